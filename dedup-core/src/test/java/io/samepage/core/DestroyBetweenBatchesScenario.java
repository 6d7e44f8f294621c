package io.samepage.core;

import io.samepage.testing.AllocationFaultLoader;
import io.samepage.testing.AllocationFaults;

/**
 * Two guests destroyed between batches with the k-th allocation of the destroys failing, for {@link
 * AllocationFaultTest}, which loads this class through an {@link AllocationFaultLoader}. Each destroy
 * gives its guest's page ids back at once, the scanner being idle ({@link DedupEngine#releaseUnnamedIds}):
 * {@code filed}, whose page the unstable index holds, into quarantine; {@code fresh}, made after the last
 * full scan and never visited, to the free ids.
 *
 * <p>A destroy that throws must have changed nothing (the guest live and listed; destroyed again, it
 * goes), or, past its point of no return, have thrown only where {@link DedupEngine#destroy} says it
 * may: the skip list's marker node, made in {@link LiveGuests#remove}. Anything else told its caller that a destroy which was done had
 * failed. Then the engine must be whole, its page ids exactly those of its guests live or waiting for
 * their release ({@link PageIdLedger}), and once the next full scan starts both guests' ids free.
 *
 * <p>{@link #apply} returns the findings of one run ("" for none); {@link #getAsLong} the allocations the
 * destroys passed in the last run. Not thread safe.
 */
final class DestroyBetweenBatchesScenario extends FaultScenario {

    /** How the allocation site of the skip list's marker node is named ({@link AllocationFaultLoader}). */
    private static final String MARKER_NODE = ", after remove";

    @Override
    public String apply(long failAt) {
        return onSmallEngine(failAt, this::run);
    }

    private String run(DedupEngine engine, long failAt) {
        MergeDomain domain = engine.createDomain("a");
        Guest filed = engine.createGuest(domain, "filed", PAGE);
        Guest other = engine.createGuest(domain, "other", PAGE);
        filed.write(0, AllocationFaultShapes.content(5), 0, PAGE);
        other.write(0, AllocationFaultShapes.content(7), 0, PAGE);
        engine.scanner().scanFullPass();        // first visits: hashes only
        engine.scanner().scanFullPass();        // files both pages in the unstable index
        Guest fresh = engine.createGuest(domain, "fresh", PAGE);
        int filedIds = filed.table().basePageId();
        int freshIds = fresh.table().basePageId();

        AllocationFaults.failAt(failAt);
        String found = destroy(engine, filed) + destroy(engine, fresh);
        String where = endArmed(failAt);
        if (!found.isEmpty()) {
            return where + found;
        }
        EngineInvariants.assertConsistentWithHasherOf(engine.context(), engine, where);
        String idsAfterDestroys = PageIdLedger.differences(engine);       // told after the check below: its finding keeps its words
        engine.scanner().scanBatch(1);          // starts the next full scan: the quarantine is released
        if (engine.pageOwner(filedIds) != null || engine.pageOwner(freshIds) != null) {
            return where + ": once the next full scan started, a destroyed guest still owns its page ids: "
                    + engine.pageOwner(filedIds) + ", " + engine.pageOwner(freshIds);
        }
        if (idsAfterDestroys != null) {
            return where + ": after the destroys, " + idsAfterDestroys;
        }
        String ids = PageIdLedger.differences(engine);
        return ids == null ? "" : where + ": once the next full scan started, " + ids;
    }

    /** Destroys {@code guest}; "" if it went, or its destroy threw and changed nothing, or threw where it may. */
    private static String destroy(DedupEngine engine, Guest guest) {
        try {
            guest.destroy();
            return "";
        } catch (OutOfMemoryError e) {
            if (!guest.isDestroyed()) {
                if (!engine.guests().contains(guest)) {
                    return ": the destroy of " + guest.name() + " threw " + e.getMessage()
                            + ", its guest not destroyed, yet the engine no longer lists it";
                }
                guest.destroy();                // the failure was one allocation: this one goes
                return "";
            }
            String site = AllocationFaults.injectedAt();
            if (site != null && site.startsWith("LiveGuests.remove:") && site.endsWith(MARKER_NODE)) {
                return "";
            }
            return ": the destroy of " + guest.name() + " threw " + e.getMessage() + ", though its guest was down";
        }
    }
}
