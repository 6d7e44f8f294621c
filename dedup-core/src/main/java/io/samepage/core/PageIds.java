package io.samepage.core;

import io.samepage.core.DedupException.Kind;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.util.BitSet;

/**
 * Engine-wide page ids: every guest page has one {@code int}, {@code base + page}, so the unstable
 * index can chain guest pages through a 4-byte link per page instead of keeping a table of 8-byte
 * (guest, page) pairs. Ids are handed out in chunks of {@value #CHUNK_PAGES} pages (16 MiB of guest
 * memory); a guest takes whole chunks, and {@link #owner} finds a page's guest with two array reads.
 * The id space is 2^31 pages (8 TiB of guest memory at once).
 *
 * <p>A destroyed guest's chunks are reused only once no unstable index names one of its pages: an
 * index may name a page until the scanner empties it at the start of the next full scan, and an id
 * reused meanwhile by a guest of another domain would make that entry a candidate from that domain.
 * Every filing marks the guest's page table with the current marking epoch, which moves each time the
 * indexes are emptied ({@link #scanEpoch}, {@link MergeDomain#putUnstable}; they keep their pages from
 * one full scan to the next until a destroyed guest's ids wait for that, {@link UnstableFiling}), so a
 * destroyed guest whose table holds an older mark (none of its pages was filed since the indexes were
 * last emptied: a guest made since then, never visited, or only once) gives its chunks back at the first moment no scanner thread runs: at its
 * destroy between batches, else at the end of the batch then running ({@link #releaseUnfiled}; one
 * destroyed in the instant between that release and the batch's unlock waits for the next batch's end,
 * the next destroy or the next full scan). A guest whose table is marked waits in quarantine, its old owner readable, until {@link
 * #releaseQuarantined} (the next full scan's start). Before, every destroyed guest waited for it
 * unless every index was empty: a WebAssembly host making and destroying 5,000 small guests a second
 * while a full scan at KSM's rate took two minutes ran out of the 2^31-page id space within it,
 * though fewer than 200 guests were live (GuestChurnBetweenFullScansTest).
 *
 * <p>The chunk-to-owner table has two levels: a fixed array of {@value #SEGMENTS} segments, each made
 * at the first guest whose chunks fall in it and kept, of {@value #SEGMENT_CHUNKS} owners. A guest's
 * creation or release writes its own chunks' entries and nothing else, so it costs the same with one
 * live guest or 100,000. The table was one array, replaced by a copy at every creation and every
 * release so that readers needed no lock: with a chunk per small guest, each creation copied an entry
 * per live guest. Entries are written with release semantics and read with acquire, so an owner read
 * sees the guest as it was when it was made the owner. A guest's chunks become its own one by one, not
 * at once: nothing reads them before {@link #publish} returns, since only pages of a live guest are
 * visited and filed in an index, and a guest is live only after it is published.
 *
 * <p>{@link #allocate} takes the lowest run of free chunks that fits (first fit). It searches from the
 * lowest chunk that may be free, which a release moves down to the chunks it frees, so the creation
 * that follows a destroy finds the freed chunk at once; otherwise the search reads the taken chunks'
 * bits 64 at a time.
 *
 * <p>Thread safety: {@link #owner} and {@link #scanEpoch} are safe from any thread without a lock; the
 * rest is synchronized.
 */
final class PageIds {

    static final int CHUNK_SHIFT = 12;
    static final int CHUNK_PAGES = 1 << CHUNK_SHIFT;
    /** Chunks in the 2^31-page id space. */
    static final int MAX_CHUNKS = 1 << (31 - CHUNK_SHIFT);
    static final int SEGMENT_SHIFT = 10;
    /** Chunks per segment of the owner table: 16 GiB of guest memory, 4 KiB of references. */
    static final int SEGMENT_CHUNKS = 1 << SEGMENT_SHIFT;
    static final int SEGMENTS = MAX_CHUNKS >>> SEGMENT_SHIFT;

    private static final VarHandle SEGMENT = MethodHandles.arrayElementVarHandle(Guest[][].class);
    private static final VarHandle OWNER = MethodHandles.arrayElementVarHandle(Guest[].class);

    /** Segment of chunks to owning guest: a segment is set once, its entries set and cleared by writers. */
    private final Guest[][] owners = new Guest[SEGMENTS][];
    private int segmentsMade;
    private final BitSet used = new BitSet();
    /** Every chunk below this one is taken. */
    private int lowestFree;
    /** Destroyed guests not looked at yet: a batch in progress may have been filing their pages. */
    private final GuestWaitList destroyed = new GuestWaitList();
    /** Destroyed guests with a page filed since the indexes were last emptied: their ids wait for the next emptying. */
    private final GuestWaitList quarantined = new GuestWaitList();
    /**
     * The current marking epoch: one more at each {@link #releaseQuarantined}, which runs only where the
     * unstable indexes were just emptied (a full scan's start, {@code run=2}) or are found empty, so every
     * entry an index holds was filed in the current epoch. Starts at 1, since a table's 0 means never
     * filed; a wrap after 2^32 epochs could only take an old mark for a current one, which keeps a guest's
     * ids longer, never shorter.
     */
    private volatile int scanEpoch = 1;
    /** {@link #destroyed} is not empty; written under the monitor, read without it. */
    private volatile boolean anyDestroyed;
    /** Guests {@link #quarantine quarantined} since the engine started; written under the monitor, read without it. */
    private volatile long destroys;

    /**
     * Ids for {@code pages} pages of a new guest, all or nothing. Caller holds this.
     *
     * @return the guest's first id
     * @throws DedupException if no run of free chunks is long enough
     */
    private int allocate(int pages) {
        int chunks = chunks(pages);
        lowestFree = used.nextClearBit(lowestFree);
        int start = lowestFree;
        while (true) {
            start = used.nextClearBit(start);
            if ((long) start + chunks > MAX_CHUNKS) {
                throw new DedupException(Kind.POOL_EXHAUSTED, "engine page id space exhausted: no run of " + chunks + " free chunks of "
                        + CHUNK_PAGES + " pages among " + MAX_CHUNKS + "; the ids of destroyed guests whose pages an "
                        + "unstable index names come back when the scanner's next full scan starts");
            }
            int taken = used.nextSetBit(start);
            if (taken < 0 || taken >= start + chunks) {
                break;
            }
            start = taken;
        }
        // The owner table's segments for these chunks, made here so that publish allocates nothing: a
        // guest that could not be published would be made and not live. A segment made is kept.
        for (int s = start >>> SEGMENT_SHIFT; s <= (start + chunks - 1) >>> SEGMENT_SHIFT; s++) {
            if (owners[s] == null) {
                SEGMENT.setRelease(owners, s, new Guest[SEGMENT_CHUNKS]);
                segmentsMade++;
            }
        }
        used.set(start, start + chunks);
        return start << CHUNK_SHIFT;
    }

    /**
     * {@link #allocate}, and {@link #makeQuarantineRoom} for the guest to come, all or nothing: a creation
     * that fails once its guest is made undoes it as a destroy does, which must then allocate nothing.
     * The room goes back with {@link #dropQuarantineRoom} or {@link #unallocate}, or to the guest's
     * {@link #quarantine}.
     */
    synchronized int allocateWithRoom(int pages) {
        int base = allocate(pages);
        try {
            makeQuarantineRoom();
        } catch (RuntimeException | Error e) {
            free(base >>> CHUNK_SHIFT, chunks(pages));
            throw e;
        }
        return base;
    }

    /**
     * Makes {@code guest} the owner of the ids from {@link #allocate}; they resolve to it from now on.
     * Allocates nothing.
     */
    synchronized void publish(Guest guest, int base) {
        int first = base >>> CHUNK_SHIFT;
        setOwners(first, first + chunks(guest.pageCount()), guest);
    }

    /** Gives back ids from {@link #allocateWithRoom} that were never published (the guest was not made), and the room. */
    synchronized void unallocate(int base, int pages) {
        free(base >>> CHUNK_SHIFT, chunks(pages));
        dropQuarantineRoom();
    }

    /** The marking epoch a page filed now is marked with ({@link PageTable#markFiled}). Lock free. */
    int scanEpoch() {
        return scanEpoch;
    }

    /**
     * Makes room for one more {@link #quarantine}, and for that guest in the quarantine proper if its
     * release finds a page of it filed ({@link #releaseUnfiled}), kept for it however the lists are
     * released meanwhile, so that neither allocates: a destroy makes it while a failure changes nothing
     * yet. Without the first, a quarantine that could not grow its list after the guest's frames were
     * freed left its ids taken, and its page table reachable, for good; without the second, the release a
     * destroy runs once its guest is down ({@link DedupEngine#destroy}) could throw an {@link
     * OutOfMemoryError} for a destroy that was done. A destroy that stops before its quarantine gives the
     * room back ({@link #dropQuarantineRoom}).
     */
    synchronized void makeQuarantineRoom() {
        destroyed.promiseRoom();
        try {
            quarantined.promiseRoom();
        } catch (RuntimeException | Error e) {
            destroyed.breakPromise();
            throw e;
        }
    }

    /** Gives back the room {@link #makeQuarantineRoom} kept, for a destroy that did not happen. */
    synchronized void dropQuarantineRoom() {
        destroyed.breakPromise();
        quarantined.breakPromise();
    }

    /**
     * Holds a destroyed guest's ids; they still resolve to it until {@link #releaseUnfiled} or later.
     * Takes the room {@link #makeQuarantineRoom} made; allocates nothing.
     */
    synchronized void quarantine(Guest guest) {
        destroyed.addPromised(guest);
        anyDestroyed = true;
        destroys++;
    }

    /**
     * Guests destroyed since the engine started: each is marked destroyed before this moves, so a reader
     * that sees it move and then looks finds the guest destroyed. The scanner's cue to drop destroyed
     * guests from its round. Lock free.
     */
    long destroys() {
        return destroys;
    }

    /** True if a guest was destroyed since the last release: {@link #releaseDestroyed} has work. Lock free. */
    boolean anyDestroyed() {
        return anyDestroyed;
    }

    /**
     * {@link #releaseQuarantined} if {@code indexesEmpty} (no unstable index names any page), else
     * {@link #releaseUnfiled}. Only while no scanner thread runs.
     */
    synchronized void releaseDestroyed(boolean indexesEmpty) {
        if (indexesEmpty) {
            releaseQuarantined();
        } else {
            releaseUnfiled();
        }
    }

    /**
     * Frees the ids of each guest destroyed since the last call none of whose pages was filed in an
     * unstable index since the indexes were last emptied: no index names them. The others wait in quarantine for
     * {@link #releaseQuarantined}. Only while no scanner thread runs, so that no filing is in flight and
     * every mark made is seen (the scanner's batch lock orders them). Allocates nothing, so it cannot
     * stop halfway: each destroyed guest's room in the quarantine was promised before it was destroyed
     * ({@link #makeQuarantineRoom}). (A release that ran out of heap halfway kept the guests it had freed
     * in its list, and freed their ids again next time, though a new guest may have been given them.)
     */
    synchronized void releaseUnfiled() {
        for (int i = 0; i < destroyed.size(); i++) {
            Guest guest = destroyed.get(i);
            if (guest.table().filedInScan() == scanEpoch) {
                quarantined.addPromised(guest);
            } else {
                release(guest);
                quarantined.breakPromise();
            }
        }
        destroyed.clear();
        anyDestroyed = false;
    }

    /**
     * True if an unstable index may name a page of a destroyed guest whose ids wait for the indexes to
     * be emptied: one of its pages was filed since they last were. Only while no scanner thread runs.
     */
    synchronized boolean destroyedMayBeNamed() {
        if (quarantined.size() > 0) {
            return true;
        }
        for (int i = 0; i < destroyed.size(); i++) {
            if (destroyed.get(i).table().filedInScan() == scanEpoch) {
                return true;
            }
        }
        return false;
    }

    /**
     * Frees every destroyed guest's ids and starts a new full scan's marks. Only once nothing can name
     * them: the unstable indexes are empty, and no scanner thread runs.
     */
    synchronized void releaseQuarantined() {
        for (int i = 0; i < destroyed.size(); i++) {
            release(destroyed.get(i));
            quarantined.breakPromise();     // its room there is not needed
        }
        for (int i = 0; i < quarantined.size(); i++) {
            release(quarantined.get(i));
        }
        destroyed.clear();
        quarantined.clear();
        anyDestroyed = false;
        scanEpoch++;
    }

    private void release(Guest guest) {
        int first = guest.table().basePageId() >>> CHUNK_SHIFT;
        int chunks = chunks(guest.pageCount());
        setOwners(first, first + chunks, null);
        free(first, chunks);
    }

    /** The guest that owns page id {@code id} (live, or destroyed and quarantined), or null. Lock free. */
    Guest owner(int id) {
        if (id < 0) {
            return null;
        }
        int chunk = id >>> CHUNK_SHIFT;
        Guest[] segment = (Guest[]) SEGMENT.getAcquire(owners, chunk >>> SEGMENT_SHIFT);
        return segment == null ? null : (Guest) OWNER.getAcquire(segment, chunk & (SEGMENT_CHUNKS - 1));
    }

    /**
     * Bytes of the chunk table (its segment array, the segments made, and the bits of the chunks taken)
     * and of the destroyed guests whose ids it holds: each, its page table with it, stays reachable
     * until its ids are released ({@link MetadataSizes#destroyedGuest}, which counts its reference in a
     * wait list). A wait list's array may hold up to half as many slots again as guests while it grows;
     * those are not counted, and it is given back when the list empties.
     */
    synchronized long metadataBytes() {
        long bytes = 16 + 4L * SEGMENTS + (16 + 4L * SEGMENT_CHUNKS) * segmentsMade + used.size() / 8;
        for (int i = 0; i < destroyed.size(); i++) {
            bytes += MetadataSizes.destroyedGuest(destroyed.get(i));
        }
        for (int i = 0; i < quarantined.size(); i++) {
            bytes += MetadataSizes.destroyedGuest(quarantined.get(i));
        }
        return bytes;
    }

    /** Sets the owner of chunks {@code [first, end)}, whose segments exist. Caller holds this. */
    private void setOwners(int first, int end, Guest guest) {
        for (int c = first; c < end; c++) {
            OWNER.setRelease(owners[c >>> SEGMENT_SHIFT], c & (SEGMENT_CHUNKS - 1), guest);
        }
    }

    private void free(int first, int chunks) {
        used.clear(first, first + chunks);
        lowestFree = Math.min(lowestFree, first);
    }

    private static int chunks(int pages) {
        return (int) (((long) pages + CHUNK_PAGES - 1) >>> CHUNK_SHIFT);
    }
}
