package io.samepage.core;

import io.samepage.core.DedupException.Kind;
import io.samepage.hashing.Pages;

/**
 * How {@link DedupEngine#createGuest(MergeDomain, String, long, PageMapping.Factory)} makes a mapped
 * guest: one run of frames, a host mapping over it, the guest's tables; and how it undoes them when one
 * fails. The mapping is taken down before the run is freed, since a mapping left up over a reused run
 * would show the next guest's frames to whoever holds it; where it will not come down, the run's frames
 * are withheld for good ({@link FramePool#withhold}).
 *
 * <p>Thread safety: called under the engine's monitor.
 */
final class MappedGuests {

    private MappedGuests() {
    }

    /**
     * A mapped guest on a run of frames taken from {@code engine}'s pool, mirrored by the mapping
     * {@code factory} makes over it. Where that fails, the run goes back to the pool, its memory given back
     * first ({@link FramePool#releaseRun}, which allocates nothing itself, so a heap that stays exhausted
     * cannot keep it), unless its mapping could not be taken down: then the run stays taken for good, withheld.
     * Before, it went back untouched onto lists whose frames are handed out as reading zeros, and what a VM
     * the factory let run on it wrote before the creation failed was read by the next guest on the run.
     *
     * @throws DedupException POOL_EXHAUSTED (no such run), INVALID_ARGUMENT (the factory made no mapping),
     *                        HOST_REFUSED (the factory or the mapping threw); an {@link Error} passes through
     */
    static Guest create(DedupEngine engine, MergeDomain domain, String name, long creation, long sizeBytes,
                        PageMapping.Factory factory, int basePageId) {
        FramePool pool = engine.pool();
        int pages = (int) (sizeBytes >>> Pages.PAGE_SHIFT);
        int first;
        try {
            first = pool.allocateRun(pages);
        } catch (IllegalStateException e) {
            throw new DedupException(Kind.POOL_EXHAUSTED, "guest " + name + ": " + e.getMessage());
        }
        PageMapping mapping = null;
        try {
            mapping = factory.create(first, pages);
            if (mapping == null) {
                throw new DedupException(Kind.INVALID_ARGUMENT, "guest " + name + ": the mapping factory made no mapping");
            }
            return new Guest(engine, domain, name, creation, sizeBytes, mapping, first, basePageId);
        } catch (RuntimeException | Error e) {
            Throwable refused = mapping == null ? null : unmap(mapping);
            if (refused != null) {
                for (int frame = first; frame < first + pages; frame++) {
                    pool.withhold(frame);           // the host may still map the run: it is never reused
                }
                Suppressed.add(e, refused);         // may be e itself: one preallocated OutOfMemoryError
                throw refusedMapping(name, e);
            }
            try {
                pool.releaseRun(first, pages);      // the factory was called: a VM may have written the run
            } catch (RuntimeException | Error faulted) {
                Suppressed.add(e, faulted);         // the run stays taken, withheld
            }
            throw refusedMapping(name, e);
        }
    }

    /**
     * Takes down a guest that was made but never handed out, to undo its creation ({@link Guest#takeDown}).
     * Where its mapping will not come down, the host may still map its run: the guest is marked destroyed
     * all the same, so that no close takes it down again, and each frame a page of it holds is withheld
     * for good ({@link FramePool#withhold}) rather than go to another guest. Allocates nothing; no other
     * thread holds a page of the guest once it is marked destroyed (the scanner skips it).
     *
     * @return null if the guest is down, else what its mapping threw
     */
    static Throwable takeDownOrWithhold(Guest guest) {
        try {
            guest.takeDown();
            return null;
        } catch (RuntimeException | Error refused) {
            guest.markDestroyed();
            for (int page = 0; page < guest.pageCount(); page++) {
                if (guest.isPrivate(page)) {
                    guest.engine().pool().withhold(guest.frameAt(page));
                }
            }
            return refused;
        }
    }

    /**
     * Takes down the mapping of a guest whose creation failed after it was made (the guest's tables ran
     * out of heap, say), before its run is freed: left up, it is at least a leaked host mapping (an mmap
     * of the run, for {@code MappedGuest}), and a factory that attached it to a VM would let that VM
     * reach frames the pool hands to the next guest. Returns null, or what the mapping threw: then the
     * caller withholds the run (adding the failure as a suppressed one allocates, so it comes after).
     */
    private static Throwable unmap(PageMapping mapping) {
        try {
            mapping.unmapAll();
            return null;
        } catch (RuntimeException | Error e) {
            return e;
        }
    }

    private static RuntimeException refusedMapping(String name, Throwable e) {
        if (e instanceof Error error) {
            throw error;
        }
        return e instanceof DedupException d ? d
                : new DedupException(Kind.HOST_REFUSED, "guest " + name + ": its page mapping failed: " + e.getMessage(), e);
    }
}
