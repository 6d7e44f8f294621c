package io.samepage.core;

import io.samepage.hashing.PageHasher;
import io.samepage.hashing.Pages;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.concurrent.locks.StampedLock;

/**
 * One visit of the {@link Scanner} to one guest page: KSM's rules, the indexes and the merges.
 *
 * <p>A visit to a written guest page, as in mm/ksm.c:
 * <ol>
 *   <li>{@code smart_scan}: a page that stayed unmergeable for several visits is skipped for 1, 2, 4,
 *       then 8 visits ({@code pages_skipped}).</li>
 *   <li>KSM's volatility rule: a page merges only on a visit that finds it unchanged since the last one.
 *       The engine sees every write (the page's dirty bit), so "unchanged" is "not written since", and
 *       new content is not read at all on the visit that first sees it: it is read on the next visit,
 *       to hash it and then compare it with its twin while it is in the cache, one read from memory
 *       per merge instead of KSM's two. A page written again between visits is hashed; if its hash is
 *       the one stored, it is unchanged (rewritten with the same bytes), else it is volatile and waits.
 *       A clean page keeps its hash without being read again.</li>
 *   <li>{@code use_zero_pages}: an all-zero page (hash equal to the zero page's, then a full compare)
 *       is mapped to the zero frame.</li>
 *   <li>The stable index of the page's domain: the page merges into a frame whose bytes are <em>fully
 *       equal</em> and that maps fewer than {@code max_page_sharing} pages ({@link StableIndex}: one
 *       compare per key, O(log n) among colliding contents).</li>
 *   <li>The unstable index: a page seen earlier, unchanged since, under the same key (the hash folded
 *       to 32 bits), or among colliding pages one of equal content; after a full compare under both
 *       pages' locks both map the lower of their frames, which enters the stable index. Otherwise this
 *       page becomes a candidate. A page whose stable twins are all full comes here too, as in KSM: a
 *       new duplicate frame starts only when two such pages pair up, so a lone leftover stays
 *       unshared.</li>
 * </ol>
 * A filed page stays filed from scan to scan while it is neither written nor merged, so a visit to it
 * only asks the stable index, and it leaves the index on the visit that finds it written, merged or
 * released ({@link UnstableFiling}): between scans the index holds the unique pages ({@code
 * pages_unshared}). The hash never decides a merge: every merge
 * site above compares all 4096 bytes, under the locks of both pages, within one domain.
 *
 * <p>Mapped guests ({@link PageMapping}): their writable pages can be written behind the engine's back,
 * by a KVM guest, so before a full compare the visitor {@linkplain Guest#writeProtect write-protects}
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
 * <p>Failure atomicity: a merge completes or changes nothing, whatever is thrown ({@link StableMerges}).
 * What can fail comes first, the stable index growing for a new pair's frame, then the remap of the page
 * onto the shared frame, and nothing that can fail comes after: a host that refuses the remap, or an
 * index that cannot grow, leaves both pages, the indexes and the counters as they were, so no page is
 * ever left private on a frame another page maps. A refusal reaches the caller of {@link
 * Scanner#scanBatch} as a {@link DedupException} of kind {@link DedupException.Kind#HOST_REFUSED}, and
 * the next batch goes on.
 *
 * <p>Rejected alternative: KSM keeps its indexes as red-black trees ordered by memcmp, which never
 * trusts a hash but compares O(log n) pages per lookup; a hash table keyed by the fast hash compares
 * one page per lookup on this hardware's memory bandwidth budget, and keeps a memcmp-ordered tree
 * only for keys that collide ({@link ContentTree}).
 *
 * <p>Thread safety: one thread per visitor (with {@code scan_threads}, one visitor per scanner thread);
 * visits on several threads are safe together: each holds its page's stripe, tries a candidate's, and
 * changes a domain's indexes under their locks (the unstable index's shard of the key, then maybe the
 * stable index's). Counter getters are safe from any thread.
 */
final class PageVisitor {

    private static final int MERGED = 1;
    private static final int NOT_MERGED = 0;
    /** A candidate's page was busy or could not be protected: the visited page waits for its next visit. */
    private static final int BUSY = -1;

    private final DedupEngine engine;
    private final MemorySegment memory;
    private final ScanKnobs knobs;
    private final PageHasher hasher;
    private final PageCompare compare;
    private final FreedFrames freed;
    private final StableMerges merges;
    private final int zeroPageKey;

    private final VisitCounts counts = new VisitCounts();
    /** The page being visited was write-protected for a compare (a mapped guest's page). */
    private boolean visitProtected;
    /** The page being visited was read in this visit (hashed), so it is in this core's cache. */
    private boolean visitRead;
    /** Keeps {@link #touch}'s loads from being optimized away. */
    private long touched;
    /** Where a batch's first half leaves its index lookups ({@link #visitDeferred}); null, or full: at once. */
    DeferredMerges deferTo;
    /**
     * Whether a page read (hashed) in this visit is deferred too, as on several threads, where each
     * shard's lookups are one thread's; on one thread it merges at once, while it is in the cache.
     */
    boolean deferReadPages;
    /** Where a page whose pair candidate was busy waits for a retry in its batch ({@link ScanWorkers}); null: none. */
    DeferredMerges retryTo;

    PageVisitor(DedupEngine engine, PageHasher hasher, FreedFrames freed) {
        this.engine = engine;
        this.memory = engine.pool().memory();
        this.knobs = engine.knobs();
        this.hasher = hasher;
        this.compare = engine.pageCompare();
        this.freed = freed;
        this.merges = new StableMerges(engine);
        this.zeroPageKey = MergeDomain.keyOf(hasher.hash(MemorySegment.ofArray(new byte[Pages.PAGE_SIZE]), 0));
    }

    /** Gives the frames this visitor's merges freed back to the pool now ({@link FreedFrames#flush}). */
    void flushFreed() {
        freed.flush();
    }

    long pagesScanned() {
        return counts.pagesScanned();
    }

    long pagesSkipped() {
        return counts.pagesSkipped();
    }

    long pagesHashed() {
        return counts.pagesHashed();
    }

    long merges() {
        return counts.merges();
    }

    /** Visits {@code page} of {@code guest}: hash, then maybe merge. Takes the page's stripe. */
    void visit(Guest guest, int page) {
        StampedLock lock = guest.stripeOf(page);
        // A merged page, or one still filed, only counts: read that without writing the lock's word, which scanner
        // threads and writers on other cores would otherwise pull back and forth. Validated: a racing change takes the lock.
        long seen = lock.tryOptimisticRead();
        if (seen != 0 && (guest.isMerged(page) ? !guest.table().inUnstable(page) : stillFiled(guest, page))
                && !guest.isDestroyed() && lock.validate(seen)) {
            counts.scanned();
            return;
        }
        long stamp = lock.writeLock();
        try {
            if (guest.isDestroyed()) {
                return;
            }
            MergeDomain domain = guest.domain();
            int frame = guest.frameAt(page);
            int state = guest.stateAt(page);
            boolean merged = guest.isMerged(page);
            if (guest.table().inUnstable(page) && (merged || (state & PageTable.DIRTY) != 0
                    || PageTable.passedBy(frame, state, domain.zeroFrame()))) {
                UnstableFiling.unfile(guest, page);     // merged, written or released since filed
            }
            if (merged) {
                counts.scanned();
                return;
            }
            if (PageTable.passedBy(frame, state, domain.zeroFrame())) {
                return;             // never written, or a hole: the scan's cursor passes such pages by unvisited
            }
            counts.scanned();
            if (knobs.smartScan() && SmartScan.skip(guest, page, state)) {
                counts.skipped();
                return;
            }
            long offset = FramePool.offsetOf(frame);
            state = guest.stateAt(page);
            if ((state & PageTable.VISITED) == 0) {
                // The first visit to this content: KSM's volatility rule makes it wait for the next visit
                // whatever it holds, and the dirty bit will tell then whether it changed. So it is not read
                // now: the visit that may merge it hashes it and compares it at once, while it is in the
                // cache (one read from memory instead of two). A page written again before that visit is
                // hashed then, as KSM hashes on a first visit, and merges on the visit after.
                guest.setState(page, (state & ~(PageTable.DIRTY | PageTable.ZERO_SEEN) | PageTable.VISITED) & ~SmartScan.AGE_AND_SKIP);
                return;
            }
            boolean dirty = (state & PageTable.DIRTY) != 0;
            boolean keyed = (state & PageTable.KEYED) != 0;
            int key;
            boolean zeroSeen;
            if (keyed && !dirty) {
                key = guest.table().key(page);
                if (guest.table().inUnstable(page)) {
                    if (key != zeroPageKey && !domain.mayHoldStableLocked(key)) {
                        return;     // unchanged and still filed, and no stable frame to merge into (UnstableFiling)
                    }
                    UnstableFiling.unfile(guest, page);
                }
                zeroSeen = (state & PageTable.ZERO_SEEN) != 0;
            } else {
                // Read now, to merge now if unchanged: if it may be all zeros, compare first and skip the hash.
                // The result holds until the page is written (its dirty bit), so a later visit merges it
                // without reading it again. Every rehash decides it afresh. Not for mapped guests, written
                // behind our back. The first long decides "may be": a compare is counted only if it is zero.
                zeroSeen = !guest.isMapped() && knobs.useZeroPages()
                        && memory.get(ValueLayout.JAVA_LONG_UNALIGNED, offset) == 0 && compare.isZero(offset);
                key = zeroSeen ? zeroPageKey : MergeDomain.keyOf(hasher.hash(memory, offset));
                counts.hashed();
            }
            visitRead = !(keyed && !dirty);
            int kept = state & ~(PageTable.DIRTY | PageTable.ZERO_SEEN) | (zeroSeen ? PageTable.ZERO_SEEN : 0)
                    | PageTable.KEYED;
            if (dirty && (!keyed || guest.table().key(page) != key)) {
                guest.table().setKey(page, key);
                guest.setState(page, kept & ~SmartScan.AGE_AND_SKIP);      // changed since its last visit: volatile
                return;
            }
            if (!keyed) {
                guest.table().setKey(page, key);                // unwritten since its first visit: merge now
            }
            guest.setState(page, kept);
            if (deferTo != null && key != zeroPageKey && (!visitRead || deferReadPages) && !deferTo.full()) {
                deferTo.add(guest, page, key);      // the indexes in the batch's second half (ScanWorkers)
                return;
            }
            mergeProtected(guest, page, frame, key, zeroSeen);
        } finally {
            lock.unlockWrite(stamp);
        }
    }

    /**
     * True if the locked visit would only count {@code page}: filed, neither written nor released since,
     * no stable frame may hold its key ({@link UnstableFiling}), no smart_scan ageing (a write). Read
     * without the stripe, so the caller validates its stamp: taking and releasing the lock's word a page
     * cost a steady scan more than the rest of the visit (docs/perf/engine.md).
     */
    private boolean stillFiled(Guest guest, int page) {
        int state = guest.stateAt(page);
        int key = guest.table().key(page);
        return guest.table().inUnstable(page) && !knobs.smartScan()
                && (state & (PageTable.DIRTY | PageTable.VISITED | PageTable.KEYED)) == (PageTable.VISITED | PageTable.KEYED)
                && !PageTable.passedBy(guest.frameAt(page), state, guest.domain().zeroFrame())
                && key != zeroPageKey && !guest.domain().mayHoldStableUnlocked(key);
    }

    /**
     * The second half of a visit the first half {@linkplain #deferTo deferred}: looks the page up in the
     * indexes and maybe merges it, if it still holds what it held then (not merged, not written since,
     * still filed under {@code key}); else it waits for its next visit, as a page busy with a writer does.
     * A page with nothing to pair with is filed without its lock ({@link UnstableFiling#fileAlone}); else
     * this takes the page's stripe.
     */
    void visitDeferred(Guest guest, int page, int key) {
        MergeDomain domain = guest.domain();
        // A zero-key page (retried: ScanWorkers.retryBusy) takes the locked path, which maps zeros first.
        if (mayFileAlone(guest, key) && UnstableFiling.fileAlone(guest, page, key, domain)) {
            return;
        }
        StampedLock lock = guest.stripeOf(page);
        long stamp = lock.writeLock();
        try {
            if (guest.isDestroyed() || guest.isMerged(page)) {
                return;
            }
            int frame = guest.frameAt(page);
            int state = guest.stateAt(page);
            if (frame == domain.zeroFrame() || (state & (PageTable.HOLE | PageTable.DIRTY)) != 0
                    || (state & PageTable.KEYED) == 0 || guest.table().key(page) != key) {
                return;
            }
            visitRead = false;
            mergeProtected(guest, page, frame, key, false);
        } finally {
            lock.unlockWrite(stamp);
        }
    }

    /** False if a deferred page must take the locked path: the zero page's key, or a stable frame may hold it. */
    boolean mayFileAlone(Guest guest, int key) {
        return key != zeroPageKey && !guest.domain().mayHoldStableUnlocked(key);
    }

    /** {@link #merge}, then gives a mapped guest's page its write access back if it did not merge. */
    private void mergeProtected(Guest guest, int page, int frame, int key, boolean zeroSeen) {
        Throwable failed = null;
        try {
            merge(guest, page, frame, key, zeroSeen);
        } catch (Throwable e) {
            failed = e;
            throw e;
        } finally {
            boolean unprotect = visitProtected && !guest.isMerged(page);
            visitProtected = false;     // first: a refused unprotect must not leave the next visit unprotected
            if (unprotect) {
                unprotect(guest, page, failed);
            }
        }
    }

    /** Unprotects after a compare no merge followed; a refusal is attached to the visit's own failure, if any. */
    private static void unprotect(Guest guest, int page, Throwable failed) {
        try {
            guest.unprotect(page);
        } catch (RuntimeException refused) {
            if (failed == null) {
                throw refused;
            }
            Suppressed.add(failed, refused);
        }
    }

    /**
     * A clean page's merge: zero page, then stable index, then unstable index. Caller holds the page.
     * {@code zeroSeen}: the page was found all zeros (a full compare) when it was last hashed and has not
     * been written since, so that compare still holds.
     */
    private void merge(Guest guest, int page, int frame, int key, boolean zeroSeen) {
        long offset = FramePool.offsetOf(frame);
        if (key == zeroPageKey && guest.isMapped()) {
            if (protectVisited(guest, page) && compare.isZero(offset)) {
                guest.releaseZero(page);
                return;
            }
        } else if (key == zeroPageKey && knobs.useZeroPages() && (zeroSeen || compare.isZero(offset))) {
            int left = guest.mapZero(page);
            engine.zeroPageMapped();
            merged(left);
            return;
        }
        if (mergeWithStable(guest, page, frame, key) == NOT_MERGED) {
            mergeWithUnstable(guest, page, frame, key);
        }
    }

    /**
     * Counts a whole merge, then frees the frame it left ({@code -1}: none): last, since handing frames back
     * to the pool may throw (a fault zeroing a frame in place), and the merge must be whole and counted then.
     */
    private void merged(int left) {
        counts.merged();
        if (left >= 0) {
            freed.add(left);
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

    /** Loads one word of each of the page's cache lines, so that a compare finds the page in the cache. */
    private void touch(long offset) {
        long sum = 0;
        for (int line = 0; line < Pages.PAGE_SIZE; line += 64) {
            sum += memory.get(ValueLayout.JAVA_LONG_UNALIGNED, offset + line);
        }
        touched += sum;
    }

    /**
     * Merges the page into a stable frame of equal bytes with room. Maps the page first: if the remap
     * throws, whatever it throws, the reference taken on the frame is dropped and nothing else has changed
     * ({@link StableMerges#intoStable}).
     *
     * @return {@link #MERGED}; {@link #BUSY} if the page could not be protected; {@link #NOT_MERGED}
     *         (no equal frame, or all full: then the unstable index may start a new duplicate)
     */
    private int mergeWithStable(Guest guest, int page, int frame, int key) {
        MergeDomain domain = guest.domain();
        if (!domain.mayHoldStableUnlocked(key)) {
            return NOT_MERGED;           // most unique pages: no lock, which other scanner threads would wait for
        }
        if (!visitRead && knobs.scanThreads() > 1) {
            touch(FramePool.offsetOf(frame));   // the compare below runs under the lock other scanner threads wait for
        }
        int left;
        SpinLocks.lock(domain.stableLock());
        try {
            if (!domain.mayHoldStable(key)) {
                return NOT_MERGED;
            }
            if (!protectVisited(guest, page)) {
                return BUSY;
            }
            int taken = domain.takeStable(key, FramePool.offsetOf(frame), knobs.maxPageSharing());
            if (taken < 0) {
                return NOT_MERGED;
            }
            domain.addSharing(1);
            left = merges.intoStable(domain, guest, page, taken);
        } finally {
            domain.stableLock().unlock();
        }
        merged(left);
        return MERGED;
    }

    /**
     * Merges the page with an unstable candidate of equal bytes: the one chained under its key, else one
     * of equal content among colliding candidates. The lower of the two frames becomes stable (a mapped
     * guest's pair: the candidate's). Otherwise files
     * the page as a candidate itself (unless a candidate's page was busy: then it waits for its next visit).
     */
    private void mergeWithUnstable(Guest guest, int page, int frame, int key) {
        MergeDomain domain = guest.domain();
        java.util.concurrent.locks.ReentrantLock lock = domain.unstableLock(key);     // other scanner threads
        SpinLocks.lock(lock);
        try {
            mergeWithUnstableLocked(guest, page, frame, key, domain);
        } finally {
            lock.unlock();
        }
    }

    private void mergeWithUnstableLocked(Guest guest, int page, int frame, int key, MergeDomain domain) {
        int candidate = domain.unstableChained(key);
        int result = candidate < 0 ? NOT_MERGED : pairWith(guest, page, frame, key, candidate);
        if (result == NOT_MERGED) {
            candidate = domain.unstableColliding(key, FramePool.offsetOf(frame));
            result = candidate < 0 ? NOT_MERGED : pairWith(guest, page, frame, key, candidate);
        }
        if (result == NOT_MERGED) {
            domain.putUnstable(key, guest.table(), page);
        }
    }

    /** Merges the visited page with unstable candidate {@code otherId} if their bytes are equal. */
    private int pairWith(Guest guest, int page, int frame, int key, int otherId) {
        MergeDomain domain = guest.domain();
        Guest other = engine.pageOwner(otherId);
        if (other == null || other.isDestroyed() || other.domain() != domain) {
            return NOT_MERGED;
        }
        int otherPage = otherId - other.table().basePageId();
        StampedLock otherLock = other.stripeOf(otherPage);
        boolean sameStripe = otherLock == guest.stripeOf(page);
        long otherStamp = sameStripe ? 0 : SpinLocks.tryWriteLock(otherLock);
        if (!sameStripe && otherStamp == 0) {
            if (retryTo != null) {
                retryTo.add(guest, page, key);
            }
            return BUSY;
        }
        boolean otherProtected = false;
        Throwable failed = null;
        try {
            int otherFrame = other.frameAt(otherPage);
            if (other.isDestroyed() || (other == guest && otherPage == page)) {
                return NOT_MERGED;
            }
            if (other.isMerged(otherPage) || otherFrame == domain.zeroFrame() || (other.stateAt(otherPage) & PageTable.HOLE) != 0) {
                domain.removeUnstable(key, other.table(), otherPage);     // merged or released since filed: out
                return NOT_MERGED;
            }
            if (!protectVisited(guest, page)) {
                return BUSY;
            }
            if (other.isMapped()) {
                if (!other.writeProtect(otherPage)) {
                    return BUSY;
                }
                otherProtected = true;      // only now: a protect the host refused needs no unprotect
            }
            if (!compare.equal(FramePool.offsetOf(frame), FramePool.offsetOf(otherFrame))) {
                return NOT_MERGED;
            }
            int filed = key;
            if (guest.isMapped() || other.isMapped()) {
                // Written behind the engine's back since hashed, maybe: file the frame under what it holds.
                filed = MergeDomain.keyOf(hasher.hash(memory, FramePool.offsetOf(otherFrame)));
                counts.hashed();
            }
            // The pair keeps the lower of its two frames (mapped guests: the candidate's) whichever page a
            // thread reached first, so guests keep their frames in address order (docs/perf/engine.md#scan_threads).
            boolean keepOwn = frame < otherFrame && !guest.isMapped() && !other.isMapped();
            int left = keepOwn ? merges.pair(domain, guest, page, other, otherPage, frame, filed)
                    : merges.pair(domain, other, otherPage, guest, page, otherFrame, filed);   // all or nothing
            otherProtected = false;     // it stays read-only: its frame is the shared one now
            domain.removeUnstable(key, other.table(), otherPage);
            merged(left);
            return MERGED;
        } catch (Throwable e) {
            failed = e;
            throw e;
        } finally {
            try {
                if (otherProtected) {
                    unprotect(other, otherPage, failed);
                }
            } finally {
                if (!sameStripe) {
                    otherLock.unlockWrite(otherStamp);      // even if the host refused the unprotect
                }
            }
        }
    }
}
