package io.samepage.core;

import java.util.concurrent.locks.ReentrantLock;

/**
 * The steps of a merge that change things, once {@link PageVisitor} has compared the bytes: a guest page
 * remapped onto a frame that is, or becomes, stable, with the frame's refcount, the pages' states, the
 * stable index and the counters. All or nothing, whatever is thrown: a host's refusal, an {@link Error},
 * a checked exception thrown undeclared.
 *
 * <p>The rule: everything that can fail comes before the remap, and nothing that can fail after it.
 * <ul>
 *   <li>Into a stable frame ({@link #intoStable}): the lookup took a reference on the frame under the
 *       domain's lock; if the remap throws, anything at all, the reference is dropped again.</li>
 *   <li>A new pair ({@link #pair}): one page is remapped onto the other's frame, which enters the stable
 *       index. Under the domain's lock, the index first works out where the frame goes and makes room
 *       for it there ({@link StableIndex#plan}), the only step that allocates: if it cannot grow (an
 *       {@link OutOfMemoryError}), nothing has changed. Then the remap, which the host may refuse, also
 *       changing nothing. Then only steps that neither allocate, nor wait, nor call the host: the
 *       refcount, the kept page marked stable, the filing into the room made, the counters.</li>
 *   <li>The frame a remapped page leaves is freed by the caller once the merge is whole and counted:
 *       handing frames back to the pool may throw (a fault zeroing a frame in place; a failed release of
 *       its backing is counted, not thrown).</li>
 * </ul>
 * Before, a new pair's frame was filed after the remap, where the index may grow: an error there left the
 * moved page on the kept page's frame while the kept page still counted as private, so a write to it went
 * in place, into the other guest's page too. The kept page is marked stable before the filing, so even a
 * throw nothing here foresees (a fault in a compare) cannot let a write in place reach the other page.
 *
 * <p>The lock is held from the plan to the filing, the remap included, as a merge into a stable frame
 * already held it across its remap: nothing can file or take out a frame in between, so the room made
 * stays where the frame goes. For a guest held in software the remap only writes its page table; for a
 * mapped guest it is the host's remap. Rejected: reserving room without the lock across the remap. Another
 * scanner thread may file under the same key meanwhile, which changes where the frame goes (the bucket
 * chain, the duplicates or the collision tree), so a reservation would have to make room in all three:
 * the duplicates' lists and the collision tree in every domain that merges a pair, where they now cost
 * nothing until a content has a second frame or a key collides, and the lock taken twice a pair.
 *
 * <p>Thread safety: one instance per {@link PageVisitor}, so per scanner thread (its filing plan).
 */
final class StableMerges {

    private final DedupEngine engine;
    private final FrameTable frames;
    private final StableIndex.Filing filing = new StableIndex.Filing();

    StableMerges(DedupEngine engine) {
        this.engine = engine;
        this.frames = engine.pool().table();
    }

    /**
     * Maps {@code page} of {@code guest} onto stable frame {@code taken}, on which the caller took a
     * reference and counted it in {@code pages_sharing}, under the domain's lock, which it still holds. If
     * the remap throws, the reference is dropped again and nothing else has changed: an unchecked
     * exception becomes a {@link DedupException.Kind#HOST_REFUSED}; anything else is thrown unchanged.
     *
     * @return the frame the page left, for the caller to free once the merge is counted; -1 if none
     */
    int intoStable(MergeDomain domain, Guest guest, int page, int taken) {
        try {
            return guest.mapStable(page, taken);
        } catch (Throwable refused) {       // an Error, or a checked exception a host throws undeclared
            try {
                engine.releaseStable(domain, taken);
            } catch (Throwable released) {
                Suppressed.add(refused, released);
            }
            if (refused instanceof RuntimeException e) {
                throw refusedMerge(guest, page, e);
            }
            throw refused;
        }
    }

    /**
     * Maps page {@code moved} of {@code mover} onto {@code shared}, the frame of page {@code kept} of
     * {@code keeper}, which enters the stable index under {@code filed}. Caller holds both pages' stripes
     * and has compared their bytes. If the index cannot grow, or the host refuses the remap, nothing has
     * changed: an unchecked exception from the host becomes a {@link DedupException.Kind#HOST_REFUSED};
     * anything else is thrown unchanged.
     *
     * @return the frame the moved page left, for the caller to free once the merge is counted; -1 if none
     */
    int pair(MergeDomain domain, Guest keeper, int kept, Guest mover, int moved, int shared, int filed) {
        int left;
        ReentrantLock lock = domain.stableLock();
        SpinLocks.lock(lock);
        try {
            domain.planStable(shared, filed, filing);      // may grow the index: first, while nothing has changed
            try {
                left = mover.mapStable(moved, shared);
            } catch (RuntimeException refused) {
                throw refusedMerge(mover, moved, refused);
            }
            // From here on nothing allocates, waits or calls the host.
            frames.incrementRef(shared);
            keeper.markStable(kept);            // before the filing: from here a write to either page copies
            domain.addStable(filing);
        } finally {
            lock.unlock();
        }
        domain.addSharing(1);
        return left;
    }

    /** What a merge throws when the host refuses to remap {@code page} of {@code guest}. */
    private static DedupException refusedMerge(Guest guest, int page, RuntimeException refused) {
        return new DedupException(DedupException.Kind.HOST_REFUSED, guest + ": the host refused to remap page " + page
                + " onto a shared frame; the merge was skipped, the engine as it was (the host says what it left): "
                + refused.getMessage(), refused);
    }
}
