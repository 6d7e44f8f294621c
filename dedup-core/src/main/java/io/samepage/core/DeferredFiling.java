package io.samepage.core;

import java.util.concurrent.atomic.AtomicReference;
import java.util.concurrent.locks.ReentrantLock;

/**
 * One scanner thread's second half of a batch over a claimed chunk of one unstable shard's deferred
 * pages ({@link ScanWorkers}): the pages with nothing to pair with are filed under one hold of the
 * shard's lock, not one a page, so the misses of their index slots overlap instead of waiting each
 * for the lock's atomic write before it; the others then take the locked path one by one ({@link
 * PageVisitor#visitDeferred}), after the shard's lock is let go (a page's stripe is taken before an
 * unstable lock, never after).
 *
 * <p>Thread safety: one per scanner thread. Allocates nothing.
 */
final class DeferredFiling {

    /** The chunk's pages left for the locked path, by index in the chunk's list. */
    private final int[] later = new int[ScanWorkers.CLAIM];

    /** Bytes of this object and its list ({@link MetadataSizes}). */
    long metadataBytes() {
        return MetadataSizes.object(MetadataSizes.REFERENCE) + MetadataSizes.array(later.length, Integer.BYTES);
    }

    /**
     * Files or visits pages {@code start} to {@code stop - 1} of {@code list}'s shard {@code shard}. A
     * page that throws costs only itself: the first throwable goes to {@code failure}, and the others
     * are still filed or visited.
     */
    void file(PageVisitor visitor, DeferredMerges list, int shard, int start, int stop,
            AtomicReference<Throwable> failure) {
        int pending = 0;
        ReentrantLock held = null;
        try {
            for (int i = start; i < stop; i++) {
                Guest guest = list.guest(shard, i);
                int key = list.key(shard, i);
                if (!visitor.mayFileAlone(guest, key)) {
                    later[pending++] = i;
                    continue;
                }
                MergeDomain domain = guest.domain();
                ReentrantLock lock = domain.unstableLock(key);     // one per domain and shard
                if (lock != held) {
                    if (held != null) {
                        held.unlock();
                        held = null;
                    }
                    SpinLocks.lock(lock);
                    held = lock;
                }
                try {
                    if (!UnstableFiling.fileIfAlone(guest, list.page(shard, i), key, domain)) {
                        later[pending++] = i;
                    }
                } catch (Throwable e) {
                    failure.compareAndSet(null, e);
                }
            }
        } finally {
            if (held != null) {
                held.unlock();
            }
        }
        for (int j = 0; j < pending; j++) {
            visit(visitor, list, shard, later[j], failure);
        }
    }

    /** Visits every page of {@code list}'s only list again under its lock, then empties it: a batch's retries. */
    static void retry(PageVisitor visitor, DeferredMerges list, AtomicReference<Throwable> failure) {
        try {
            for (int i = 0; i < list.count(0); i++) {
                visit(visitor, list, 0, i, failure);
            }
        } finally {
            list.clear();
        }
    }

    /**
     * The second half of page {@code i} of {@code list}'s list {@code l}, under its lock. What it throws
     * goes to {@code failure} and costs only this page: the caller goes on with the next. Thrown out of
     * the loop, it dropped the rest of the pages claimed with it, up to a claim's worth: taken out of the
     * first half's path to the indexes, they were neither merged nor filed in that full scan.
     */
    private static void visit(PageVisitor visitor, DeferredMerges list, int l, int i, AtomicReference<Throwable> failure) {
        try {
            visitor.visitDeferred(list.guest(l, i), list.page(l, i), list.key(l, i));
        } catch (Throwable e) {
            failure.compareAndSet(null, e);
        }
    }
}
