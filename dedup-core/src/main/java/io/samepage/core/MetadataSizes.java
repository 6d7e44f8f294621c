package io.samepage.core;

/**
 * How the engine counts the Java heap its own structures take ({@link DedupEngine#metadataBytes}, which
 * {@code general_profit} subtracts), what one guest costs, and what a frame pool costs beside its frames.
 *
 * <p>The conventions, as the counts have always assumed: a 64-bit HotSpot JVM with compressed references
 * (a heap under 32 GiB), so a reference is 4 bytes; an object is a 12-byte header and its declared
 * fields, padded to a multiple of 8; an array is a 16-byte header and its elements, padded the same way.
 * An object is counted from the fields its class declares, written out below next to its name: a
 * field added to one of those classes must be added here too (EngineMemoryTest compares the total with
 * the heap the JVM holds for it). Where the JVM runs with compact object headers (8 bytes) or without
 * compressed references, the count is off by those few bytes an object.
 *
 * <p>A guest holds, for as long as anything reaches it (the engine while it is live, then its page ids'
 * quarantine, {@link PageIds}): its {@link Guest} object and name, its {@link PageTable} (three arrays
 * of an {@code int} a page, a byte a page for the unstable index, an {@code int} a chunk of the scan's
 * cursor, its tracked count, the translation epochs once it has an access path),
 * its {@link PageStripes} (an array and a {@code StampedLock} per stripe), its {@link GuestWrites},
 * two counters and, if mapped, its {@link WrittenPages} bitmap (a bit a page). Its
 * {@link PageMapping} is the embedder's and is not counted. While it is live the engine also holds an
 * entry for it in its list of guests and its name set ({@link GuestNames}), and the scanner a slot
 * for it in the current full scan's round ({@link #SCAN_ROUND_SLOT}).
 *
 * <p>A merge domain's objects (its lock and counters, its indexes and their shards, locks, trees and
 * maps) are counted the same way by its own {@link MergeDomain#metadataBytes} and its indexes'.
 *
 * <p>Thread safety: stateless; a count read while guests change is as racy as the counters are.
 */
final class MetadataSizes {

    static final int REFERENCE = 4;
    static final int OBJECT_HEADER = 12;
    static final int ARRAY_HEADER = 16;

    /** engine, pool, domain, name, table, frames, states, stripes, writes, mapping, written, two counters; creation, pageCount, mapped, destroyed. */
    private static final long GUEST = object(13 * REFERENCE + Long.BYTES + Integer.BYTES + 2);
    /** frames, states, keys, inUnstable, chunks, tracked, epochs; basePageId, zeroFrame, filedInScan; staleFiled. */
    private static final long PAGE_TABLE = object(7 * REFERENCE + 3 * Integer.BYTES + Long.BYTES);
    /** stripes; mask, runShift. */
    private static final long PAGE_STRIPES = object(REFERENCE + 2 * Integer.BYTES);
    /** head, tail and three lock views; state, readerOverflow. */
    private static final long STAMPED_LOCK = object(5 * REFERENCE + Long.BYTES + Integer.BYTES);
    /**
     * A guest's slot in the scanner's round: an element of each array it keeps a guest of the round
     * (the round's guests, and its {@link ScanCursor}'s page tables and page counts).
     */
    private static final long SCAN_ROUND_SLOT = REFERENCE + REFERENCE + Integer.BYTES;
    /** engine, guest, pool, domain. */
    private static final long GUEST_WRITES = object(4 * REFERENCE);
    /** guest, mapping, bitmap. */
    private static final long WRITTEN_PAGES = object(3 * REFERENCE);
    static final long ATOMIC_LONG = object(Long.BYTES);
    /** A {@code ReentrantLock} (sync) and its {@code NonfairSync} (head, tail, owner; state). */
    static final long REENTRANT_LOCK = object(REFERENCE) + object(3 * REFERENCE + Integer.BYTES);
    /** An Agrona {@code Int2IntHashMap} or {@code Long2LongHashMap}: entries and three views; load factor, missing value, threshold, size, a flag. */
    private static final long INT2INT_MAP = object(4 * REFERENCE + 4 * Integer.BYTES + 1);
    private static final long LONG2LONG_MAP = object(4 * REFERENCE + 3 * Integer.BYTES + Long.BYTES + 1);
    /** An Agrona {@code IntArrayList}: elements; nullValue, size, modCount. */
    private static final long INT_LIST = object(REFERENCE + 3 * Integer.BYTES);
    /** value; hash, coder, hashIsZero. */
    private static final long STRING = object(REFERENCE + Integer.BYTES + 2);
    /** {@code Long}: a guest's creation number as the skip list's key. */
    private static final long BOXED_LONG = object(Long.BYTES);
    /** A skip-list node (key, value, next) and an index node (node, down, right). */
    private static final long SKIP_LIST_NODE = object(3 * REFERENCE);
    /**
     * A {@link FramePool}'s own objects beside its frame table's arrays (whose elements
     * {@link FrameTable#metadataBytes} counts): the pool (backing, memory, table, reservation, lists,
     * taking, closed; capacityFrames, discardsToOs), its {@link FrameTable} (three arrays,
     * and their headers), {@link FreeLists} (table, lock; capacityFrames, warmLimit, coldHead, warmHead,
     * warmCount, inFlight, bump) and its lock object, {@link FramePopulation} (backing, table; active),
     * {@link FrameReservation} (state) and its {@code AtomicLong}, {@link FrameTaking} (backing, memory,
     * table, lists, reservation, population, releaseFailures, withheld) and its two {@code AtomicLong}s, and
     * the {@code AtomicBoolean} closed. The backing counts its own ({@link FrameBacking#metadataBytes}).
     */
    static final long FRAME_POOL = object(7 * REFERENCE + Integer.BYTES + 1)
            + object(3 * REFERENCE) + 3 * ARRAY_HEADER
            + object(2 * REFERENCE + 7 * Integer.BYTES) + object(0)
            + object(2 * REFERENCE + 1)
            + object(REFERENCE) + ATOMIC_LONG
            + object(8 * REFERENCE) + 2 * ATOMIC_LONG
            + object(Integer.BYTES);
    /**
     * JDK objects whose fields are not ours to list, measured instead (JDK 25, {@code jcmd
     * GC.class_histogram} over 2,000 frame pools): a shared arena with a mapped region in it (the arena,
     * its session and resource list, the region's segment and its unmap cleanup), and each buffer
     * allocated in such an arena (its segment and its cleanup).
     */
    private static final long ARENA_WITH_REGION = 24 + 32 + 16 + 40 + 32 + 24;
    private static final long ARENA_BUFFER = 40 + 48;
    /**
     * A {@code DiscardList} (region, iovecs, capture, offsets, lengths; count), its two {@code
     * long[CAPACITY]}, and the JDK's objects for its two buffers in the arena ({@link #ARENA_BUFFER}).
     */
    private static final long DISCARD_LIST = object(5 * REFERENCE + Integer.BYTES)
            + 2 * array(io.samepage.linux.DiscardList.CAPACITY, Long.BYTES) + 2 * ARENA_BUFFER;

    private MetadataSizes() {
    }

    /** An object of {@code fieldBytes} of fields. */
    static long object(long fieldBytes) {
        return padded(OBJECT_HEADER + fieldBytes);
    }

    /** An array of {@code length} elements of {@code elementBytes} each. */
    static long array(long length, int elementBytes) {
        return padded(ARRAY_HEADER + length * elementBytes);
    }

    private static long padded(long bytes) {
        return (bytes + 7) & ~7L;
    }

    /**
     * Bytes a guest holds, live or destroyed: everything the class Javadoc lists but its entries in the
     * engine's guest list and name set ({@link #liveGuestEntry}).
     */
    static long guest(Guest guest) {
        int pages = guest.pageCount();
        long epochs = guest.table().epochBytes();
        long bytes = GUEST + string(guest.name()) + GUEST_WRITES + 2 * ATOMIC_LONG
                + PAGE_TABLE + 3 * array(pages, Integer.BYTES) + array(pages, Byte.BYTES) + ATOMIC_LONG
                + array((pages + ScanCursor.CHUNK_PAGES - 1L) / ScanCursor.CHUNK_PAGES, Integer.BYTES)
                + (epochs == 0 ? 0 : padded(ARRAY_HEADER + epochs))
                + PAGE_STRIPES + array(guest.stripes().count(), REFERENCE) + STAMPED_LOCK * guest.stripes().count();
        if (guest.isMapped()) {
            bytes += WRITTEN_PAGES + array((pages + 63L) >>> 6, Long.BYTES);
        }
        return bytes;
    }

    /**
     * Bytes the engine holds for a live guest outside the guest itself, its name set aside ({@link
     * GuestNames#metadataBytes} counts that): its node in the guest list, the boxed creation number that
     * keys it ({@code Long.valueOf} shares those from -128 to 127), half an index node (a quarter of a
     * {@code ConcurrentSkipListMap}'s entries get index nodes, two on average), and its slot in the
     * scanner's round ({@link #SCAN_ROUND_SLOT}).
     */
    static long liveGuestEntry(Guest guest) {
        long boxed = guest.creation() >= -128 && guest.creation() <= 127 ? 0 : BOXED_LONG;
        return SKIP_LIST_NODE + boxed + SKIP_LIST_NODE / 2 + SCAN_ROUND_SLOT;
    }

    /**
     * Bytes a destroyed guest whose page ids wait ({@link PageIds}) holds: itself, its place in the wait
     * list, and its slot in the scanner's round, which stays until the next full scan starts (when the
     * ids of every such guest are released at the latest) but no longer holds the guest from the
     * scanner's next batch on ({@link Scanner}).
     */
    static long destroyedGuest(Guest guest) {
        return guest(guest) + REFERENCE + SCAN_ROUND_SLOT;
    }

    /**
     * The heap of an {@link AnonymousFrames} (arena, region, discards, discardLocks; discardsToOs,
     * closed): its arrays of {@code batches} locks and, where it discards to the operating system, its
     * arena and mapped region and {@code batches} discard lists, whose buffers are most of a frame pool's
     * fixed cost. Without, the arena's objects hold a region allocated on the Java side and are not
     * counted.
     */
    static long anonymousFrames(int batches, boolean discardLists) {
        return object(4 * REFERENCE + 2) + array(batches, REFERENCE) + batches * REENTRANT_LOCK
                + (discardLists ? ARENA_WITH_REGION + array(batches, REFERENCE) + batches * DISCARD_LIST : 0);
    }

    /** An Agrona {@code Int2IntHashMap} of {@code capacity}: two {@code int}s a slot. */
    static long int2IntMap(int capacity) {
        return INT2INT_MAP + array(2L * capacity, Integer.BYTES);
    }

    /** An Agrona {@code Long2LongHashMap} of {@code capacity}: two {@code long}s a slot. */
    static long long2LongMap(int capacity) {
        return LONG2LONG_MAP + array(2L * capacity, Long.BYTES);
    }

    /** An Agrona {@code IntArrayList} of {@code capacity}. */
    static long intList(int capacity) {
        return INT_LIST + array(capacity, Integer.BYTES);
    }

    /** A string: its object and its bytes, one a character if all are Latin-1 (compact strings), else two. */
    static long string(String s) {
        int bytesPerChar = 1;
        for (int i = 0; i < s.length(); i++) {
            if (s.charAt(i) > 0xFF) {
                bytesPerChar = 2;
                break;
            }
        }
        return STRING + array(s.length(), bytesPerChar);
    }
}
