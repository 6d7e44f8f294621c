package io.samepage.core;

import java.util.concurrent.locks.ReentrantLock;

/**
 * A page's place in its domain's unstable index across full scans: filed, taken out, and the byte in its
 * page table that says which ({@link PageTable#inUnstable}).
 *
 * <p>KSM empties its unstable tree at the start of every full scan and files every unchanged unique page
 * again, because a tree ordered by page contents is corrupted by a page written meanwhile. This index is
 * keyed by each page's key, which changes only when the scanner rehashes a written page, so an entry
 * stays true for as long as its page is neither written nor merged. An unchanged filed page therefore
 * stays filed from scan to scan, and its visit only asks the stable index whether it may now hold its
 * content; a steady scan of converged guests then takes no unstable lock and probes no unstable table
 * for its unique pages, which was most of its time (docs/perf/engine.md#a-steady-scan-keeps-its-unique-pages-filed).
 * A filed page leaves the index when its visit finds it written, merged, released or a new stable
 * frame that may hold it ({@link #unfile}), when it pairs as a candidate, and when a candidate found
 * merged or released meanwhile is met by a lookup; the whole index is emptied, and every byte with it,
 * only as a full scan starts where it is cheaper or needed ({@link #indexesToEmpty}) and at {@code
 * run=2}. Every entry is still only a candidate: a pairing compares all 4096 bytes under both pages'
 * locks.
 *
 * <p>Thread safety: the caller holds the page's stripe (or, for {@link #fileIfAlone}, is the second half
 * of the batch that visited it); each change takes, or holds, the lock of the key's shard.
 */
final class UnstableFiling {

    private UnstableFiling() {
    }

    /**
     * True if the unstable indexes are to be emptied as a full scan starts: one may name a page of a
     * destroyed guest whose ids wait for that (they are reused then), holds a removed tree node, or over
     * a quarter of the pages they file were written, merged or released since the last full scan
     * started. Taking each of those out at its visit costs a lock and a probe, as filing one does, and the
     * scanner files a shard's pages a chunk at a time: where many went stale, emptying the indexes and
     * filing the unchanged ones again is cheaper (a pass that wrote every page of converged guests took
     * about a fifth longer taking them out one by one, docs/perf/engine.md). While no scanner thread runs;
     * starts the stale counts again.
     */
    static boolean indexesToEmpty(DedupEngine engine, PageIds pageIds) {
        long stale = 0;
        for (Guest guest : engine.liveGuests()) {
            stale += guest.table().takeStaleFiled();
        }
        if (pageIds.destroyedMayBeNamed()) {
            return true;
        }
        long filed = 0;
        for (MergeDomain domain : engine.domains()) {
            if (domain.unstableNeedsEmptying()) {
                return true;
            }
            filed += domain.pagesUnshared();
        }
        return 4 * stale > filed && stale > 0;
    }

    /**
     * Files the page as an unstable candidate if its shard holds nothing it could pair with (most unique
     * pages), without the page's lock: its stripe is a line that the thread which visited the page in
     * the first half wrote. An entry only ever leads to a pairing under both pages' locks, so a page that
     * is written, merged or destroyed meanwhile leaves an entry that its next visit, or a lookup, takes
     * out, as it does when that happens just after a visit that filed it under its lock. False if there
     * may be a candidate: then the caller visits it under its lock.
     */
    static boolean fileAlone(Guest guest, int page, int key, MergeDomain domain) {
        ReentrantLock lock = domain.unstableLock(key);
        SpinLocks.lock(lock);
        try {
            return fileIfAlone(guest, page, key, domain);
        } finally {
            lock.unlock();
        }
    }

    /** {@link #fileAlone} with {@code key}'s unstable lock already held ({@link DeferredFiling}). */
    static boolean fileIfAlone(Guest guest, int page, int key, MergeDomain domain) {
        if (!domain.unstableHoldsNothingFor(key)) {
            return false;
        }
        domain.putUnstable(key, guest.table(), page);
        return true;
    }

    /** Takes a filed page out of its domain's unstable index, under the key it was filed with. Caller holds its stripe. */
    static void unfile(Guest guest, int page) {
        int key = guest.table().key(page);
        MergeDomain domain = guest.domain();
        ReentrantLock lock = domain.unstableLock(key);
        SpinLocks.lock(lock);
        try {
            domain.removeUnstable(key, guest.table(), page);
        } finally {
            lock.unlock();
        }
    }
}
