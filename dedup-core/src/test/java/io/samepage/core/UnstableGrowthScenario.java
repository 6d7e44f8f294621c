package io.samepage.core;

import io.samepage.testing.AllocationFaultLoader;
import io.samepage.testing.AllocationFaults;
import java.util.concurrent.locks.ReentrantLock;

/**
 * A domain's unstable index filled past its first growths with the k-th allocation failing, for {@link
 * AllocationFaultTest}, which loads this class through an {@link AllocationFaultLoader}. The filing that
 * could not grow the index throws the {@link OutOfMemoryError}; its page must then be out of the index,
 * as its mark in the page table says ({@link MergeDomain#putUnstable}), and every other page filed once
 * and marked ({@link EngineInvariants}).
 *
 * <p>{@link #apply} returns the finding of one run ("" for none); {@link #getAsLong} the allocations the
 * filing passed in the last run. Not thread safe.
 */
final class UnstableGrowthScenario extends FaultScenario {

    private static final int PAGES = 200;

    @Override
    public String apply(long failAt) {
        return onSmallEngine(failAt, (engine, k) -> {
            MergeDomain domain = engine.createDomain("d");
            Guest guest = engine.createGuest(domain, "g", (long) PAGES * PAGE);
            PageTable table = guest.table();
            for (int page = 0; page < PAGES; page++) {
                table.setKey(page, page * 8191 + 1);      // one shard (the top bits 0): its table grows three times
            }
            AllocationFaults.failAt(k);
            for (int page = 0; page < PAGES; page++) {
                int key = table.key(page);
                ReentrantLock lock = domain.unstableLock(key);
                lock.lock();
                try {
                    domain.putUnstable(key, table, page);
                } catch (OutOfMemoryError e) {
                    if (AllocationFaults.injectedAt() == null) {
                        throw e;
                    }
                } finally {
                    lock.unlock();
                }
            }
            String where = endArmed(k);
            try {
                EngineInvariants.assertConsistent(engine, null, where);
            } catch (AssertionError e) {
                return e.getMessage();
            }
            return "";
        });
    }
}
