package io.samepage.core;

import io.samepage.testing.AllocationFaultLoader;
import io.samepage.testing.AllocationFaults;

/**
 * A scanner thread's {@link DeferredMerges} filled past its first two growths with the k-th allocation
 * failing, for {@link AllocationFaultTest}, which loads this class through an {@link AllocationFaultLoader}.
 * The add that could not grow the lists throws the {@link OutOfMemoryError}; after it the lists must
 * take pages as before (the scanner empties them and goes on at its next batch) and give back what was
 * added. With {@code scan_threads} above 1 every batch fills them: lists left of different lengths would
 * fail every batch from then on.
 *
 * <p>{@link #apply} returns the finding of one run ("" for none); {@link #getAsLong} the allocations the
 * filling passed in the last run. Not thread safe.
 */
final class DeferredMergesGrowthScenario extends FaultScenario {

    @Override
    public String apply(long failAt) {
        DeferredMerges lists = new DeferredMerges(1);       // one owner: every key is its
        AllocationFaults.failAt(failAt);
        try {
            for (int page = 0; page < 40; page++) {
                try {
                    lists.add(null, page, page);
                } catch (OutOfMemoryError e) {
                    if (AllocationFaults.injectedAt() == null) {
                        throw e;
                    }
                } catch (RuntimeException e) {
                    return "k=" + failAt + " at " + AllocationFaults.injectedAt() + ": the add of page " + page + " threw " + e;
                }
            }
            String where = endArmed(failAt);
            lists.clear();
            for (int page = 0; page < 100; page++) {
                try {
                    lists.add(null, page, 7 * page);
                } catch (RuntimeException e) {
                    return where + ": the next batch's add of page " + page + " threw " + e;
                }
            }
            for (int i = 0; i < lists.count(0); i++) {
                if (lists.page(0, i) != i || lists.key(0, i) != 7 * i) {
                    return where + ": entry " + i + " is page " + lists.page(0, i) + ", key " + lists.key(0, i);
                }
            }
            return lists.count(0) == 100 ? "" : where + ": " + lists.count(0) + " entries, not 100";
        } finally {
            AllocationFaults.disarm();
        }
    }
}
