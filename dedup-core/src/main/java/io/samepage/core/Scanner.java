package io.samepage.core;

import io.samepage.hashing.PageHasher;
import io.samepage.hashing.Pages;
import java.lang.foreign.MemorySegment;
import java.lang.management.ManagementFactory;
import java.lang.management.ThreadMXBean;
import java.util.concurrent.locks.StampedLock;
import org.agrona.concurrent.Agent;

/**
 * KSM's scanner as an Agrona {@link Agent}: each duty cycle visits {@code pages_to_scan} guest pages
 * ({@value #CHUNK_PAGES} of each guest in turn), then waits {@code sleep_millisecs}. Run it on an {@code AgentRunner}, or step it in the
 * caller's thread with {@link #scanBatch} and {@link #scanFullPass} (embedding programs, tests, the CLI).
 *
 * <p>A visit to a written guest page, as in mm/ksm.c:
 * <ol>
 *   <li>{@code smart_scan}: a page that stayed unmergeable for several visits is skipped for 1, 2, 4,
 *       then 8 visits ({@code pages_skipped}).</li>
 *   <li>The fast hash of the page. If it changed since the last visit, the page is volatile: it waits
 *       for the next visit. The hash is stored; nothing else happens. A page that was not written since
 *       it was last hashed keeps that hash without being read again: unlike KSM, the engine sees every
 *       write (the page's dirty bit), so it rehashes only written pages.</li>
 *   <li>{@code use_zero_pages}: an all-zero page (hash equal to the zero page's, then a full compare)
 *       is mapped to the zero frame.</li>
 *   <li>The stable index of the page's domain: every frame stored under the same hash is a candidate;
 *       the page merges into the first one whose bytes are <em>fully equal</em> and that maps fewer
 *       than {@code max_page_sharing} pages. If every equal frame is full, the page's own frame starts
 *       a new duplicate in the chain.</li>
 *   <li>The unstable index: pages seen earlier in this full scan under the same key (the hash folded
 *       to 32 bits) are candidates; after a full compare with the first equal one both pages map the
 *       candidate's frame, which enters the stable index. Otherwise this page becomes a candidate.</li>
 * </ol>
 * The unstable index is emptied when the next full scan starts, so between scans it holds the last
 * scan's unique pages ({@code pages_unshared}). The hash never decides a merge: every merge
 * site above compares all 4096 bytes, under the locks of both pages, within one domain.
 *
 * <p>Mapped guests ({@link PageMapping}): their writable pages can be written behind the engine's back,
 * by a KVM guest, so before a full compare the scanner {@linkplain Guest#writeProtect write-protects}
 * each page whose frame the merge would share (the visited page; for a new pair also the candidate)
 * and makes it writable again if no merge follows. A write that comes meanwhile exits to the VMM, which
 * writes through {@link Guest} and so waits for the page's lock. Where the mapping refuses (its mapping
 * budget is spent) the merge is skipped. An all-zero page of a mapped guest is not merged: its frame's
 * memory goes back in place (a hole, still mapped, no remap), whatever {@code use_zero_pages} says, and
 * holes are passed by like never-written pages. At the start of each full scan the scanner asks each
 * mapping which pages were written behind its back ({@link WrittenPages}), so only those are rehashed.
 * A mapped page may have been written since its hash (the dirty log is read once per full scan), so
 * the frame a new pair files in the stable index is hashed again once both pages are protected: filed
 * under a stale hash, no lookup would ever find it. A stale hash elsewhere only misses a merge.
 *
 * <p>Rejected alternative: KSM keeps its indexes as red-black trees ordered by memcmp, which never
 * trusts a hash but compares O(log n) pages per lookup; a hash table keyed by the fast hash compares
 * one page per lookup on this hardware's memory bandwidth budget, and a chain walk only on collisions.
 *
 * <p>Thread safety: single-threaded; one thread drives the scanner at a time. It takes each visited
 * page's stripe exclusively, and a candidate's stripe only with {@code tryWriteLock} (a busy candidate
 * waits for the next visit), so it never waits while holding a page lock: guest writers cannot
 * deadlock with it. Counter getters are safe from any thread.
 */
public final class Scanner implements Agent {

    private static final int NONE = (int) MergeDomain.NONE;

    /**
     * Frames faulted in at the end of each batch to refill the pool's warm list ({@link
     * FramePool#replenishWarm}): at the default duty cycle (20 ms) up to 51,200 resident frames a
     * second for copy-on-write breaks, at about 1.5 ms of the scanner's CPU for a full refill.
     */
    static final int REPLENISH_PER_BATCH = 1024;

    /**
     * Pages of one guest visited before the scanner moves on to the next guest's same pages (256 KiB):
     * a full scan visits chunk 0 of every guest, then chunk 1 of every guest, and so on (KSM visits one
     * process after another). Where guests hold the same content at the same addresses, as guests
     * booted from one image do, the frame they all compare against is still in the CPU's cache when the
     * next guest's page is compared with it.
     */
    static final int CHUNK_PAGES = 64;

    private final DedupEngine engine;
    private final FramePool pool;
    private final MemorySegment memory;
    private final ScanKnobs knobs;
    private final PageHasher hasher;
    private final int zeroPageKey;
    private final ThreadMXBean threads = ManagementFactory.getThreadMXBean();
    private final FreedFrames freed;

    private Guest[] round = new Guest[0];
    private int roundPages;
    private int chunkStart;
    private int guestIndex;
    private int pageIndex;
    private boolean roundOpen;
    private long nextBatchNanos;
    private long scanStartNanos = System.nanoTime();
    private long scanStartCpuNanos = -1;

    private volatile long fullScans;
    private volatile long pagesScanned;
    private volatile long pagesSkipped;
    private volatile long pagesHashed;
    private volatile long merges;
    /** The page being visited was write-protected for a compare (a mapped guest's page). */
    private boolean visitProtected;

    Scanner(DedupEngine engine, PageHasher hasher) {
        this.engine = engine;
        this.pool = engine.pool();
        this.memory = pool.memory();
        this.knobs = engine.knobs();
        this.hasher = hasher;
        this.freed = new FreedFrames(pool);
        this.zeroPageKey = MergeDomain.keyOf(hasher.hash(MemorySegment.ofArray(new byte[Pages.PAGE_SIZE]), 0));
    }

    @Override
    public String roleName() {
        return "samepage-scanner";
    }

    /**
     * One duty cycle: obeys {@code run} (0 idles, 2 unmerges everything then sets {@code run=0}), and
     * once {@code sleep_millisecs} have passed since the last batch scans one batch.
     *
     * @return guest pages visited, or 1 for an unmerge; 0 lets the idle strategy idle
     */
    @Override
    public int doWork() {
        int run = knobs.run();
        if (run == ScanKnobs.RUN_UNMERGE) {
            engine.unmergeAll();
            knobs.unmergeDone();
            return 1;
        }
        if (run == ScanKnobs.RUN_STOP || System.nanoTime() - nextBatchNanos < 0) {
            return 0;
        }
        int visited = scanBatch(knobs.pagesToScan());
        nextBatchNanos = System.nanoTime() + knobs.sleepMillis() * 1_000_000L;
        return visited;
    }

    /**
     * Visits up to {@code budget} guest pages from where the last batch stopped. A batch ends early
     * where a full scan ends; the next batch starts the next full scan. Never-written pages count
     * toward the budget but not toward {@code pages_scanned}. The frames its merges free go back to
     * the pool together ({@link FreedFrames}) before it returns, and then it refills the pool's warm
     * list, so that copy-on-write breaks find frames already faulted in. A batch of 0 pages does only
     * that.
     *
     * @return pages visited (0 when there are no guests)
     */
    public int scanBatch(int budget) {
        try {
            return scanPages(budget);
        } finally {
            freed.flush();
            pool.replenishWarm(REPLENISH_PER_BATCH);
        }
    }

    private int scanPages(int budget) {
        if (scanStartCpuNanos < 0) {
            scanStartCpuNanos = cpuNanos();
        }
        int visited = 0;
        while (visited < budget) {
            if (!roundOpen || chunkStart >= roundPages) {
                if (roundOpen) {
                    finishFullScan();
                    return visited;
                }
                if (!startNextRound()) {
                    return visited;
                }
                continue;
            }
            if (guestIndex >= round.length) {
                guestIndex = 0;
                chunkStart += CHUNK_PAGES;
                pageIndex = chunkStart;
                continue;
            }
            Guest guest = round[guestIndex];
            if (guest.isDestroyed() || pageIndex >= Math.min(chunkStart + CHUNK_PAGES, guest.pageCount())) {
                guestIndex++;
                pageIndex = chunkStart;
                continue;
            }
            visit(guest, pageIndex++);
            visited++;
        }
        return visited;
    }

    /** Scans until the current full scan completes (a whole one if called at a boundary). */
    public void scanFullPass() {
        long target = fullScans + 1;
        while (fullScans < target) {
            if (scanBatch(4096) == 0 && engine.guests().isEmpty()) {
                return;
            }
        }
    }

    public long fullScans() {
        return fullScans;
    }

    public long pagesScanned() {
        return pagesScanned;
    }

    public long pagesSkipped() {
        return pagesSkipped;
    }

    /**
     * Pages whose bytes the scanner read to hash them, since the engine started: the work a dirty page
     * costs (a clean page keeps its last hash).
     */
    public long pagesHashed() {
        return pagesHashed;
    }

    /** Merges done since the engine started, zero-page merges included: a change detector for callers. */
    public long merges() {
        return merges;
    }

    /** Starts a full scan: the unstable index of the last one is emptied now, not when it ended. */
    private boolean startNextRound() {
        engine.clearUnstableIndexes();
        round = engine.liveGuests();
        for (Guest guest : round) {
            guest.collectWritten();
        }
        roundPages = 0;
        for (Guest guest : round) {
            roundPages = Math.max(roundPages, guest.pageCount());
        }
        chunkStart = 0;
        guestIndex = 0;
        pageIndex = 0;
        roundOpen = round.length > 0;
        return roundOpen;
    }

    /** Ends a full scan; a batch stops here, so callers see the counters of a completed scan. */
    private void finishFullScan() {
        roundOpen = false;
        fullScans++;
        long now = System.nanoTime();
        long cpu = cpuNanos();
        if (knobs.advisorMode() == AdvisorMode.SCAN_TIME) {
            advise(now - scanStartNanos, cpu - scanStartCpuNanos);
        }
        scanStartNanos = now;
        scanStartCpuNanos = cpu;
    }

    /**
     * KSM's scan-time advisor, simplified: scale {@code pages_to_scan} by how far the last full scan
     * was from the target time, cap it so the scanner's CPU share stays under {@code advisor_max_cpu},
     * and move 30% of the way there each scan (KSM also smooths with an EWMA).
     */
    private void advise(long wallNanos, long cpuNanos) {
        knobs.advisePagesToScan(advisedPagesToScan(knobs.pagesToScan(), wallNanos, cpuNanos,
                knobs.advisorTargetScanTimeSeconds(), knobs.advisorMaxCpu()));
    }

    /** The advisor's rule as a pure function of the last full scan (before the knobs' min/max clamp). */
    static int advisedPagesToScan(int current, long wallNanos, long cpuNanos, long targetSeconds, int maxCpuPercent) {
        if (wallNanos <= 0) {
            return current;
        }
        double proposed = (double) current * wallNanos / (targetSeconds * 1e9);
        double cpuShare = cpuNanos > 0 ? (double) cpuNanos / wallNanos : 0;
        if (cpuShare > 0) {
            proposed = Math.min(proposed, current * (maxCpuPercent / 100.0) / cpuShare);
        }
        return (int) Math.min(Integer.MAX_VALUE, Math.round(0.3 * proposed + 0.7 * current));
    }

    private long cpuNanos() {
        return threads.isCurrentThreadCpuTimeSupported() ? threads.getCurrentThreadCpuTime() : 0;
    }

    private void visit(Guest guest, int page) {
        StampedLock lock = guest.stripeOf(page);
        long stamp = lock.writeLock();
        try {
            if (guest.isDestroyed()) {
                return;
            }
            MergeDomain domain = guest.domain();
            int frame = guest.frameAt(page);
            int state = guest.stateAt(page);
            if (guest.isMerged(page)) {
                pagesScanned++;
                return;
            }
            if (frame == domain.zeroFrame() || (state & PageTable.HOLE) != 0) {
                return;
            }
            pagesScanned++;
            if (knobs.smartScan() && skip(guest, page, state)) {
                pagesSkipped++;
                return;
            }
            long offset = FramePool.offsetOf(frame);
            state = guest.stateAt(page);
            boolean unchanged = (state & (PageTable.VISITED | PageTable.DIRTY)) == PageTable.VISITED;
            int key;
            if (unchanged) {
                key = guest.table().key(page);
            } else {
                key = MergeDomain.keyOf(hasher.hash(memory, offset));
                pagesHashed++;
            }
            if ((state & PageTable.VISITED) == 0 || guest.table().key(page) != key) {
                guest.table().setKey(page, key);
                // The page was just read to hash it: if it may be all zeros, check now, while it is in the
                // cache. The result holds until the page is written (its dirty bit), so the next visit
                // merges it without reading it again. Not for mapped guests, written behind our back.
                boolean zero = key == zeroPageKey && !guest.isMapped() && knobs.useZeroPages()
                        && Pages.isZeroPage(memory, offset);
                guest.setState(page, (state | PageTable.VISITED) & ~(PageTable.DIRTY | PageTable.ZERO_SEEN
                        | PageTable.NIBBLE << PageTable.AGE_SHIFT | PageTable.NIBBLE << PageTable.SKIP_SHIFT)
                        | (zero ? PageTable.ZERO_SEEN : 0));
                return;
            }
            guest.setState(page, state & ~PageTable.DIRTY);
            try {
                merge(guest, page, frame, key, unchanged && (state & PageTable.ZERO_SEEN) != 0);
            } finally {
                if (visitProtected && !guest.isMerged(page)) {
                    guest.unprotect(page);
                }
                visitProtected = false;
            }
        } finally {
            lock.unlockWrite(stamp);
        }
    }

    /**
     * A clean page's merge: zero page, then stable index, then unstable index. Caller holds the page.
     * {@code zeroSeen}: the page was found all zeros when it was last hashed and
     * has not been written since, so that full compare still holds.
     */
    private void merge(Guest guest, int page, int frame, int key, boolean zeroSeen) {
        long offset = FramePool.offsetOf(frame);
        if (key == zeroPageKey && guest.isMapped()) {
            if (protectVisited(guest, page) && Pages.isZeroPage(memory, offset)) {
                guest.releaseZero(page);
                return;
            }
        } else if (key == zeroPageKey && knobs.useZeroPages() && (zeroSeen || Pages.isZeroPage(memory, offset))) {
            guest.mapZero(page, freed);
            engine.zeroPageMapped();
            merges++;
            return;
        }
        if (mergeWithStable(guest, page, frame, key) || mergeWithUnstable(guest, page, frame, key)) {
            merges++;
        }
    }

    /** Write-protects the visited page once per visit, before its first compare; false if refused. */
    private boolean protectVisited(Guest guest, int page) {
        if (!visitProtected) {
            visitProtected = guest.isMapped() && guest.writeProtect(page);
            return visitProtected || !guest.isMapped();
        }
        return true;
    }

    /** KSM's smart_scan rule (should_skip_rmap_item): age the page, then maybe skip this visit. */
    private boolean skip(Guest guest, int page, int state) {
        int age = (state >>> PageTable.AGE_SHIFT) & PageTable.NIBBLE;
        int remaining = (state >>> PageTable.SKIP_SHIFT) & PageTable.NIBBLE;
        int nextAge = Math.min(age + 1, PageTable.NIBBLE);
        boolean skip = false;
        if (age >= 3) {
            if (remaining == 0) {
                remaining = age <= 3 ? 1 : age <= 5 ? 2 : age <= 8 ? 4 : 8;
            } else {
                remaining--;
                skip = true;
            }
        }
        int cleared = state & ~(PageTable.NIBBLE << PageTable.AGE_SHIFT | PageTable.NIBBLE << PageTable.SKIP_SHIFT);
        guest.setState(page, cleared | nextAge << PageTable.AGE_SHIFT | remaining << PageTable.SKIP_SHIFT);
        return skip;
    }

    private boolean mergeWithStable(Guest guest, int page, int frame, int key) {
        MergeDomain domain = guest.domain();
        int maxSharing = knobs.maxPageSharing();
        long offset = FramePool.offsetOf(frame);
        domain.stableLock().lock();
        try {
            int head = domain.stableBucketHead(key);
            while (head != NONE && pool.table().stableKey(head) != key) {
                head = pool.table().next(head);
            }
            if (head == NONE || !protectVisited(guest, page)) {
                return false;
            }
            boolean equalButFull = false;
            for (int candidate = head; candidate != NONE; candidate = pool.table().next(candidate)) {
                if (pool.table().stableKey(candidate) != key) {
                    continue;
                }
                int mappers = pool.table().refCount(candidate);
                if (mappers <= 0 || !Pages.equal(memory, offset, memory, FramePool.offsetOf(candidate))) {
                    continue;
                }
                if (mappers >= maxSharing) {
                    equalButFull = true;
                    continue;
                }
                if (pool.table().tryIncrementRef(candidate)) {
                    domain.addSharing(1);
                    guest.mapStable(page, candidate, freed);
                    return true;
                }
            }
            if (equalButFull) {
                domain.addStable(frame, key);
                guest.markStable(page);
                return true;
            }
            return false;
        } finally {
            domain.stableLock().unlock();
        }
    }

    /**
     * Merges the page with the first candidate under its key in the unstable index whose bytes are
     * fully equal; the candidate's frame becomes stable. Otherwise files the page as a candidate itself
     * (unless a candidate's page was busy: then the page waits for its next visit).
     */
    private boolean mergeWithUnstable(Guest guest, int page, int frame, int key) {
        MergeDomain domain = guest.domain();
        for (int otherId = domain.unstableFirst(key); otherId != NONE; otherId = domain.unstableNext(otherId, key)) {
            Guest other = engine.pageOwner(otherId);
            if (other == null || other.isDestroyed() || other.domain() != domain) {
                continue;
            }
            int otherPage = otherId - other.table().basePageId();
            StampedLock otherLock = other.stripeOf(otherPage);
            boolean sameStripe = otherLock == guest.stripeOf(page);
            long otherStamp = sameStripe ? 0 : otherLock.tryWriteLock();
            if (!sameStripe && otherStamp == 0) {
                return false;
            }
            boolean otherProtected = false;
            try {
                int otherFrame = other.frameAt(otherPage);
                if (other.isDestroyed() || other.isMerged(otherPage) || otherFrame == domain.zeroFrame()
                        || (other.stateAt(otherPage) & PageTable.HOLE) != 0) {
                    continue;
                }
                if (!protectVisited(guest, page)) {
                    return false;
                }
                otherProtected = other.isMapped();
                if (otherProtected && !other.writeProtect(otherPage)) {
                    otherProtected = false;
                    return false;
                }
                if (!Pages.equal(memory, FramePool.offsetOf(frame), memory, FramePool.offsetOf(otherFrame))) {
                    continue;
                }
                otherProtected = false;     // it stays read-only: its frame becomes the shared one
                int filed = key;
                if (guest.isMapped() || other.isMapped()) {
                    // Written behind the engine's back since hashed, maybe: file the frame under what it holds.
                    filed = MergeDomain.keyOf(hasher.hash(memory, FramePool.offsetOf(otherFrame)));
                    pagesHashed++;
                }
                domain.removeUnstable(key, otherId);
                domain.stableLock().lock();
                try {
                    domain.addStable(otherFrame, filed);
                } finally {
                    domain.stableLock().unlock();
                }
                other.markStable(otherPage);
                pool.table().incrementRef(otherFrame);
                domain.addSharing(1);
                guest.mapStable(page, otherFrame, freed);
                return true;
            } finally {
                if (otherProtected) {
                    other.unprotect(otherPage);
                }
                if (!sameStripe) {
                    otherLock.unlockWrite(otherStamp);
                }
            }
        }
        domain.putUnstable(key, guest.table().basePageId() + page);
        return false;
    }
}
