package io.samepage.core;

import io.samepage.core.DedupException.Kind;
import io.samepage.hashing.Pages;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.util.concurrent.atomic.AtomicLong;

/**
 * One guest's page table: 13 bytes per guest page in four primitive arrays, no object per page.
 * <ul>
 *   <li>{@code int[] frames}: the frame the page maps (the domain's zero frame until written);</li>
 *   <li>{@code int[] states}: the state bits below, and {@code smart_scan}'s age and skip counters;</li>
 *   <li>{@code int[] keys}: the page's key (its fast hash at the scanner's last visit, folded to 32
 *       bits). Only the scanner writes them; the unstable index ({@link UnstableIndex}) reads them;</li>
 *   <li>{@code byte[] inUnstable}: 1 while its domain's unstable index holds the page under its key
 *       ({@link UnstableFiling}). A byte, not a bit: scanner threads file pages of different shards at
 *       once, and a bit would need an atomic write (about 14% of a merging pass, measured).</li>
 * </ul>
 * Page {@code p} has the engine-wide id {@link #basePageId} {@code + p} ({@link PageIds}).
 *
 * <p>Translation epochs, for the embedder access path ({@link GuestAccess}): once a guest has an
 * access path, a {@code long[]} (8 more bytes per page) counts, per page, the changes of what its
 * translation depends on: the frame, and the {@link #TRANSLATION_BITS}. {@link #set} adds one before
 * it changes anything, and every caller drops (frees, hands to the scanner's freed list) the frame a
 * page leaves only after that {@code set}: so a frame can be reused, or written by anyone but the
 * page, only after the epoch of every page that mapped it moved. The count only grows (64 bits never
 * wrap), so an epoch seen unchanged means nothing changed meanwhile.
 *
 * <p>Thread safety: none of its own beyond the tracked count and the epochs (atomic adds, read with
 * acquire from any thread). A page's frame and state are guarded by its stripe lock in the owning
 * {@link Guest}; keys belong to the scanner: a page's key is written under its stripe.
 */
final class PageTable {


    static final int VISITED = 1;
    static final int STABLE = 1 << 1;
    static final int ZERO_MERGED = 1 << 2;
    /** Written since the scanner last hashed it: the engine sees every write, so a clean page keeps its hash. */
    static final int DIRTY = 1 << 3;
    /**
     * A mapped guest's page whose own frame holds no memory (never written, or released because it was
     * all zeros): it reads as zeros and the scanner passes it by until it is written.
     */
    static final int HOLE = 1 << 4;
    /**
     * Found all zeros (a full compare) when the scanner last hashed it: valid while the page is not
     * {@link #DIRTY}, since every write to a software guest sets that bit under the page's lock.
     */
    static final int ZERO_SEEN = 1 << 5;
    /**
     * The page's key holds its hash from an earlier visit: only a page the scanner found unwritten since
     * its last visit is hashed (see {@link PageVisitor}), so a visited page may have no key yet.
     */
    static final int KEYED = 1 << 6;
    /** What the scanner learned of a page that outlives a remap: visited, and keyed. */
    static final int SCAN_HISTORY = VISITED | KEYED;
    static final int AGE_SHIFT = 8;
    static final int SKIP_SHIFT = 12;
    static final int NIBBLE = 0xF;
    /**
     * State bits a cached translation depends on: whether the page is shared ({@link #STABLE},
     * {@link #ZERO_MERGED}), a hole, or {@link #DIRTY} (a writable translation is handed out only to a
     * dirty page, so the scanner's rehash, which clears the bit, revokes it and the next write marks
     * the page again).
     */
    static final int TRANSLATION_BITS = STABLE | ZERO_MERGED | DIRTY | HOLE;

    private static final VarHandle EPOCH = MethodHandles.arrayElementVarHandle(long[].class);
    /** The scanner's look at pages without their stripes ({@link #skipPassedBy}, {@link #skipToVisit}). */
    private static final VarHandle INT_OPAQUE = MethodHandles.arrayElementVarHandle(int[].class);
    private static final VarHandle STALE_FILED;
    /** The marks of {@link #chunks}: changes, a look in progress, every page one to visit. */
    private static final VarHandle CHUNK = MethodHandles.arrayElementVarHandle(int[].class);
    private static final int CHUNK_UNKNOWN = 0;
    private static final int CHUNK_CHECKING = 1;
    private static final int CHUNK_TO_VISIT = 2;

    static {
        try {
            STALE_FILED = MethodHandles.lookup().findVarHandle(PageTable.class, "staleFiled", long.class);
        } catch (ReflectiveOperationException e) {
            throw new ExceptionInInitializerError(e);
        }
    }

    final int[] frames;
    final int[] states;
    private final int[] keys;
    /**
     * 1 for a page its domain's unstable index holds under its key. Changed only under the
     * lock of that key's shard of the index, with the entry ({@link MergeDomain#putUnstable}, {@link
     * MergeDomain#removeUnstable}), or cleared with the whole index while no scanner thread runs.
     */
    private final byte[] inUnstable;
    /**
     * Per chunk of the scan's cursor ({@link ScanCursor#CHUNK_PAGES} pages): {@link #CHUNK_TO_VISIT} once
     * the cursor looked at the whole chunk and found no page to pass by, with no page turning into one
     * meanwhile; a page that turns into one sets it back ({@link #set}, {@link #clearInUnstable}). So the
     * cursor lists such a chunk without looking at its pages: that look, on the scanner's thread alone,
     * was a fifth of a one-thread steady scan and left the other scanner threads waiting for it.
     */
    private final int[] chunks;
    /** Filed pages written, merged or released since {@link #takeStaleFiled} (writers on several stripes add). */
    private volatile long staleFiled;
    private final int basePageId;
    private final int zeroFrame;
    /** KSM's rmap_items: pages merged, or visited and holding a frame of their own; kept by {@link #set}. */
    private final AtomicLong tracked = new AtomicLong();
    /** Per-page translation epochs; null until the guest's first access path ({@link #epochs()}). */
    private volatile long[] epochs;
    /**
     * The marking epoch ({@link PageIds#scanEpoch}: one per emptying of the unstable indexes) in which one
     * of the guest's pages was last filed in an unstable index; 0 (no epoch's) if none was. Written by
     * scanner threads (the same value by each), read only while no scanner thread runs ({@link
     * PageIds#releaseUnfiled}).
     */
    private int filedInScan;

    /**
     * The pages of a guest of {@code sizeBytes}: a positive multiple of 4 KiB, of fewer than 2^31 - 8
     * pages, since each array here has an entry per page.
     *
     * @throws DedupException INVALID_ARGUMENT, naming {@code guest}, if the size is not one
     */
    static int pagesOf(String guest, long sizeBytes) {
        if (sizeBytes <= 0 || sizeBytes % Pages.PAGE_SIZE != 0) {
            throw new DedupException(Kind.INVALID_ARGUMENT, "guest " + guest + ": size must be a positive multiple of 4096 bytes, not " + sizeBytes);
        }
        if ((sizeBytes >>> Pages.PAGE_SHIFT) > Integer.MAX_VALUE - 8) {
            throw new DedupException(Kind.INVALID_ARGUMENT, "guest " + guest + ": " + sizeBytes + " bytes is more than 2^31 pages");
        }
        return (int) (sizeBytes >>> Pages.PAGE_SHIFT);
    }

    /** A software guest's table: every page on {@code zeroFrame}, never written. */
    PageTable(int pages, int basePageId, int zeroFrame) {
        this(pages, basePageId, zeroFrame, -1);
    }

    /**
     * A guest's table as it starts: with {@code firstFrame} -1 (a software guest) every page on {@code
     * zeroFrame}, never written; else (a mapped guest) page {@code p} on frame {@code firstFrame + p}, a
     * {@link #HOLE}.
     */
    PageTable(int pages, int basePageId, int zeroFrame, int firstFrame) {
        this.frames = new int[pages];
        this.states = new int[pages];
        this.keys = new int[pages];
        this.inUnstable = new byte[pages];
        this.chunks = new int[(pages + ScanCursor.CHUNK_PAGES - 1) / ScanCursor.CHUNK_PAGES];
        this.basePageId = basePageId;
        this.zeroFrame = zeroFrame;
        if (firstFrame < 0) {
            java.util.Arrays.fill(frames, zeroFrame);
        } else {
            java.util.Arrays.setAll(frames, page -> firstFrame + page);
            java.util.Arrays.fill(states, HOLE);
        }
    }

    /**
     * Sets a page's frame and state: every change after construction goes through here, with the page's
     * stripe held, so the tracked-page count stays exact without walking the table.
     */
    void set(int page, int frame, int state) {
        long[] counting = epochs;
        if (counting != null && (frame != frames[page] || ((state ^ states[page]) & TRANSLATION_BITS) != 0)) {
            EPOCH.getAndAdd(counting, page, 1L);    // before the change, and before the old frame can be dropped
        }
        if ((state & ~states[page] & (DIRTY | HOLE | STABLE | ZERO_MERGED)) != 0 && inUnstable(page)) {
            STALE_FILED.getAndAdd(this, 1L);     // its entry no longer holds: its next visit takes it out
        }
        boolean was = tracked(frames[page], states[page]);
        boolean wasPassedBy = passedBy(frames[page], states[page], zeroFrame);
        frames[page] = frame;
        states[page] = state;
        boolean now = tracked(frame, state);
        if (was != now) {
            tracked.addAndGet(now ? 1 : -1);
        }
        if (!wasPassedBy && passedBy(frame, state, zeroFrame)) {
            chunkChanged(page);     // filed or not: a clear of its mark may race with this set
        }
    }

    /**
     * A page of the chunk may now be one to pass by: after the change's own stores, a volatile store, which
     * the cursor's next look at the chunk reads ({@link #startChunkLook}), so it sees the change.
     */
    private void chunkChanged(int page) {
        CHUNK.setVolatile(chunks, page / ScanCursor.CHUNK_PAGES, CHUNK_UNKNOWN);
    }

    /** True if every page of {@code chunk} is one to visit, as the cursor last found it, unchanged since. */
    boolean chunkAllToVisit(int chunk) {
        return (int) CHUNK.getAcquire(chunks, chunk) == CHUNK_TO_VISIT;
    }

    /** Starts a look at the whole of {@code chunk}: reads what a change stored, so the look sees the change. */
    void startChunkLook(int chunk) {
        CHUNK.getAndSet(chunks, chunk, CHUNK_CHECKING);
    }

    /** The look found every page of {@code chunk} one to visit: kept unless a page changed meanwhile. */
    void endChunkLook(int chunk) {
        CHUNK.compareAndSet(chunks, chunk, CHUNK_CHECKING, CHUNK_TO_VISIT);
    }

    /**
     * The translation epochs, made (all 0) on the first call. No lock is needed to make them: a
     * translation is only ever taken under the page's stripe, and a {@link #set} that holds the stripe
     * after such a translation sees the published array.
     */
    long[] epochs() {
        long[] counting = epochs;
        if (counting == null) {
            synchronized (this) {
                counting = epochs;
                if (counting == null) {
                    counting = new long[frames.length];
                    epochs = counting;
                }
            }
        }
        return counting;
    }

    /** The page's translation epoch, an acquiring read; {@code epochs} is {@link #epochs()}. */
    static long epoch(long[] epochs, int page) {
        return (long) EPOCH.getAcquire(epochs, page);
    }

    /** Moves every page's epoch: each cached translation of the guest fails its next check. */
    void invalidateAll() {
        long[] counting = epochs;
        if (counting != null) {
            for (int page = 0; page < counting.length; page++) {
                EPOCH.getAndAdd(counting, page, 1L);
            }
        }
    }

    /**
     * True if the page's domain's unstable index holds it under its key. Read under the page's stripe
     * (or optimistically): every change of the page's mark is made under it too, or by the second half
     * of the batch that visited the page ({@link DeferredFiling}), after that visit and before the next.
     */
    boolean inUnstable(int page) {
        return inUnstable[page] != 0;
    }

    /** Notes the page filed in the unstable index; caller holds its key's shard lock. */
    void setInUnstable(int page) {
        inUnstable[page] = 1;
    }

    /** Notes the page taken out of the unstable index; caller holds its key's shard lock. */
    void clearInUnstable(int page) {
        inUnstable[page] = 0;
        if (passedBy(frames[page], states[page], zeroFrame)) {
            chunkChanged(page);     // a hole no longer filed: one to pass by now
        }
    }

    /** Filed pages written, merged or released since the last call, and starts the count again. */
    long takeStaleFiled() {
        return (long) STALE_FILED.getAndSet(this, 0L);
    }

    /** Notes every page out of the unstable index: it was emptied. While no scanner thread runs. */
    void clearAllInUnstable() {
        java.util.Arrays.fill(inUnstable, (byte) 0);
        java.util.Arrays.fill(chunks, CHUNK_UNKNOWN);
    }

    /** Bytes of the epochs, 0 until an access path made them. */
    long epochBytes() {
        long[] counting = epochs;
        return counting == null ? 0 : (long) Long.BYTES * counting.length;
    }

    /** Pages KSM would hold an rmap_item for: merged, or visited and holding a frame of their own. */
    long trackedPages() {
        return tracked.get();
    }

    private boolean tracked(int frame, int state) {
        if ((state & (STABLE | ZERO_MERGED)) != 0) {
            return true;
        }
        return (state & VISITED) != 0 && (state & HOLE) == 0 && frame != zeroFrame;
    }

    /**
     * Whether the scanner passes a page in this frame and state by, reading nothing and counting nothing:
     * not merged, and never written (it maps the domain's zero frame) or a hole. The one definition, for
     * {@link PageVisitor} under the page's stripe and for {@link ScanCursor} without it.
     */
    static boolean passedBy(int frame, int state, int zeroFrame) {
        return (state & (STABLE | ZERO_MERGED)) == 0 && (frame == zeroFrame || (state & HOLE) != 0);
    }

    /** The guest's pages. */
    int pages() {
        return frames.length;
    }

    /**
     * The first page from {@code from} (inclusive) to {@code to} (exclusive) that the scanner would not
     * {@linkplain #passedBy pass by}, or {@code to}. See {@link #skipToVisit} for what a look without the
     * stripes guarantees.
     */
    int skipPassedBy(int from, int to) {
        int page = from;
        while (page < to && passedByNow(page)) {
            page++;
        }
        return page;
    }

    /**
     * The first page from {@code from} (inclusive) to {@code to} (exclusive) that the scanner would
     * {@linkplain #passedBy pass by}, or {@code to}.
     *
     * <p>Both looks read each page's frame and state without its stripe, with opaque reads, so a write
     * made under the stripe is seen eventually (never a value older than one already seen). A page whose
     * frame or state changes during the look may be judged by one old and one new word: the worst that
     * does is pass a page by that a writer is changing at that moment, which then waits for its next
     * visit, as a page written just after the scanner passed it does. The visit itself decides again
     * under the stripe.
     */
    int skipToVisit(int from, int to) {
        int page = from;
        while (page < to && !passedByNow(page)) {
            page++;
        }
        return page;
    }

    /** A page filed in the unstable index is visited even so: the visit takes it out ({@link UnstableFiling}). */
    private boolean passedByNow(int page) {
        return passedBy((int) INT_OPAQUE.getOpaque(frames, page), (int) INT_OPAQUE.getOpaque(states, page), zeroFrame)
                && !inUnstable(page);
    }

    /** The page's key: its fast hash at the scanner's last visit, folded to 32 bits. */
    int key(int page) {
        return keys[page];
    }

    void setKey(int page, int key) {
        keys[page] = key;
    }

    /**
     * Notes that a page of the guest is filed in an unstable index in full scan {@code scanEpoch}. Stores
     * only on a change: the field likely shares a cache line with the table's array references, which every
     * visit reads, and a store per filing from two scanner threads would pass that line between cores.
     */
    void markFiled(int scanEpoch) {
        if (filedInScan != scanEpoch) {
            filedInScan = scanEpoch;
        }
    }

    /** The full scan in which a page of the guest was last filed in an unstable index, 0 if never. */
    int filedInScan() {
        return filedInScan;
    }

    /** The engine-wide id of page 0. */
    int basePageId() {
        return basePageId;
    }
}
