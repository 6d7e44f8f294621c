package io.samepage.core;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.samepage.hashing.Pages;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.locks.ReentrantLock;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * A steady full scan keeps converged guests' unique pages filed in the unstable index from the last
 * one ({@link UnstableFiling}): it takes no unstable lock for them, and what it files changes only where
 * a page was written. Before, every full scan emptied the index and filed every unique page again, a
 * lock, a probe and a store a page: most of a steady scan's time.
 */
class SteadyScanUnstableIndexTest {

    private static final int PAGE = Pages.PAGE_SIZE;
    private static final int PAGES = 256;

    @ParameterizedTest(name = "scan_threads {0}")
    @ValueSource(ints = {1, 2})
    void aSteadyScanTakesNoUnstableLockAndFilesTheSamePages(int threads) throws Exception {
        EngineContext context = new EngineContext().poolBytes(8L << 20).hashSeed(3);
        ExecutorService scanning = Executors.newSingleThreadExecutor();
        try (DedupEngine engine = DedupEngine.create(context.conclude())) {
            engine.knobs().scanThreads(threads);
            MergeDomain domain = engine.createDomain("d");
            Guest guest = engine.createGuest(domain, "g", (long) PAGES * PAGE);
            byte[] bytes = writeTwinsAndSettle(engine, guest, new SplittableRandom(7));
            assertEquals(PAGES - 2, engine.counters().pagesUnshared(), "the unique pages are filed");
            EngineInvariants.assertConsistent(engine, null, "converged");

            withEveryUnstableLock(domain, () -> fullScanWithin30s(scanning, engine,
                    "a steady full scan waited for an unstable lock its unique pages do not need"));
            assertEquals(PAGES - 2, engine.counters().pagesUnshared(), "still filed, not filed again");
            EngineInvariants.assertConsistent(engine, null, "after a steady scan");

            guest.write(5L * PAGE, bytes, 0, PAGE);     // page 5 becomes page 0's twin: out of the index, merged
            guest.write(9L * PAGE, new byte[] {1}, 0, 1);   // page 9 changes: filed again under its new key
            int oldKey = guest.table().key(9);
            for (int pass = 0; pass < 4; pass++) {     // written, then unchanged for one visit (KSM's volatility rule), then merged
                engine.scanner().scanFullPass();
            }
            assertTrue(guest.isMerged(5), "page 5 merged with its new twins");
            assertFalse(guest.table().inUnstable(5), "and left the unstable index");
            assertTrue(guest.table().inUnstable(9), "page 9 is filed again");
            assertTrue(guest.table().key(9) != oldKey, "under its new key");
            assertEquals(PAGES - 3, engine.counters().pagesUnshared(), "the unique pages, page 5 no longer one");
            EngineInvariants.assertConsistent(engine, null, "after the writes");
        } finally {
            scanning.shutdownNow();
        }
    }

    /**
     * Nor the page's stripe: a filed page unchanged since, whose key no stable frame may hold, is only
     * counted, read under an optimistic stamp. Before, each such page took and released its stripe's
     * write lock, the largest part of what was left of a steady scan's visit. A page written meanwhile
     * still takes the locked path: the stripe's readers held, the scan waits, then files the page again.
     */
    @ParameterizedTest(name = "scan_threads {0}")
    @ValueSource(ints = {1, 2})
    void aSteadyScanReadsFiledPagesWithoutTheirStripes(int threads) throws Exception {
        EngineContext context = new EngineContext().poolBytes(8L << 20).hashSeed(3);
        ExecutorService scanning = Executors.newSingleThreadExecutor();
        try (DedupEngine engine = DedupEngine.create(context.conclude())) {
            engine.knobs().scanThreads(threads).smartScan(false);   // smart_scan ages each page: a write
            MergeDomain domain = engine.createDomain("d");
            Guest guest = engine.createGuest(domain, "g", (long) PAGES * PAGE);
            writeTwinsAndSettle(engine, guest, new SplittableRandom(11));
            assertEquals(PAGES - 2, engine.counters().pagesUnshared(), "the unique pages are filed");
            long scanned = engine.counters().pagesScanned();

            withEveryStripeRead(guest, () -> fullScanWithin30s(scanning, engine,
                    "a steady full scan waited for the stripe of a page it only counts"));
            assertEquals(scanned + PAGES, engine.counters().pagesScanned(), "every page visited and counted");
            assertEquals(PAGES - 2, engine.counters().pagesUnshared(), "still filed");

            guest.write(9L * PAGE, new byte[] {1}, 0, 1);
            List<Future<?>> written = new ArrayList<>();
            withEveryStripeRead(guest, () -> {
                written.add(scanning.submit(() -> engine.scanner().scanFullPass()));
                try {
                    written.get(0).get(300, TimeUnit.MILLISECONDS);
                    throw new AssertionError("the visit of a written page went on without its stripe");
                } catch (TimeoutException expected) {
                    // it waits for the stripe, as it must
                }
            });
            written.get(0).get(30, TimeUnit.SECONDS);
            assertFalse(guest.table().inUnstable(9), "the written page left the index; filed again once unchanged");
            EngineInvariants.assertConsistent(engine, null, "after the scans");
        } finally {
            scanning.shutdownNow();
        }
    }

    /**
     * A filed page whose key the stable filter wrongly says "may" (here a bit a removed stable frame left)
     * stays filed: the visit asks the stable index under its lock, finds no frame, and only counts the
     * page. Before, each such page was taken out of the unstable index and filed again, every scan (247
     * pages a steady scan of ScanBenchmark's workload): a steady scan waited for its shard's lock.
     */
    @ParameterizedTest(name = "scan_threads {0}")
    @ValueSource(ints = {1, 2})
    void aFiledPageTheFilterWronglyMatchesStaysFiled(int threads) throws Exception {
        EngineContext context = new EngineContext().poolBytes(8L << 20).hashSeed(3);
        ExecutorService scanning = Executors.newSingleThreadExecutor();
        try (DedupEngine engine = DedupEngine.create(context.conclude())) {
            engine.knobs().scanThreads(threads);
            MergeDomain domain = engine.createDomain("d");
            Guest guest = engine.createGuest(domain, "g", (long) PAGES * PAGE);
            SplittableRandom random = new SplittableRandom(13);
            byte[] bytes = writeTwinsAndSettle(engine, guest, random);     // pages 0 and 1: one stable frame
            assertTrue(guest.isMerged(0) && guest.isMerged(1), "the twins merged");
            byte[] fresh = new byte[2 * PAGE];
            random.nextBytes(fresh);
            guest.write(0, fresh, 0, fresh.length);             // both rewritten: the stable frame leaves, its bits stay
            guest.write(5L * PAGE, bytes, 0, PAGE);             // page 5 now holds the old twins' bytes, alone
            engine.scanner().scanUntilStable(Scanner.DEFAULT_MAX_FULL_SCANS_TO_SETTLE);
            int key = guest.table().key(5);
            assertTrue(guest.table().inUnstable(5), "page 5 is filed");
            assertTrue(domain.mayHoldStableUnlocked(key), "the filter says a stable frame may hold its key");
            assertEquals(0, engine.counters().pagesShared(), "none does");

            withEveryUnstableLock(domain, () -> fullScanWithin30s(scanning, engine,
                    "a steady scan took a filed page out for the filter's wrong \"may\""));
            assertTrue(guest.table().inUnstable(5), "still filed");
            assertEquals(PAGES, engine.counters().pagesUnshared(), "every page filed, none merged");
            EngineInvariants.assertConsistent(engine, null, "after the steady scan");
        } finally {
            scanning.shutdownNow();
        }
    }

    /**
     * Fills {@code guest} with random bytes from {@code random}, pages 0 and 1 twins and the rest unique,
     * and scans until the counters settle; returns the bytes written.
     */
    private static byte[] writeTwinsAndSettle(DedupEngine engine, Guest guest, SplittableRandom random) {
        byte[] bytes = new byte[PAGES * PAGE];
        random.nextBytes(bytes);
        System.arraycopy(bytes, 0, bytes, PAGE, PAGE);
        guest.write(0, bytes, 0, bytes.length);
        engine.scanner().scanUntilStable(Scanner.DEFAULT_MAX_FULL_SCANS_TO_SETTLE);
        return bytes;
    }

    /** One full scan on {@code scanning}'s thread; fails with {@code waited} if it takes 30 s. */
    private static void fullScanWithin30s(ExecutorService scanning, DedupEngine engine, String waited) throws Exception {
        try {
            scanning.submit(() -> engine.scanner().scanFullPass()).get(30, TimeUnit.SECONDS);
        } catch (TimeoutException e) {
            throw new AssertionError(waited, e);
        }
    }

    /** Runs {@code body} holding a lock of every shard of {@code domain}'s unstable index. */
    private static void withEveryUnstableLock(MergeDomain domain, ThrowingRunnable body) throws Exception {
        List<ReentrantLock> held = everyUnstableLock(domain);
        held.forEach(ReentrantLock::lock);
        try {
            body.run();
        } finally {
            held.forEach(ReentrantLock::unlock);
        }
    }

    /** Runs {@code body} holding a read lock of every stripe of {@code guest}'s pages. */
    private static void withEveryStripeRead(Guest guest, ThrowingRunnable body) throws Exception {
        List<java.util.concurrent.locks.StampedLock> locks = new ArrayList<>();
        List<Long> stamps = new ArrayList<>();
        for (int page = 0; page < guest.pageCount(); page++) {
            java.util.concurrent.locks.StampedLock lock = guest.stripeOf(page);
            if (!locks.contains(lock)) {
                locks.add(lock);
                stamps.add(lock.readLock());
            }
        }
        try {
            body.run();
        } finally {
            for (int i = 0; i < locks.size(); i++) {
                locks.get(i).unlockRead(stamps.get(i));
            }
        }
    }

    private interface ThrowingRunnable {
        void run() throws Exception;
    }

    /** A lock of each shard of the domain's unstable index, found through keys that fall in it. */
    private static List<ReentrantLock> everyUnstableLock(MergeDomain domain) {
        List<ReentrantLock> locks = new ArrayList<>();
        boolean[] found = new boolean[UnstableShards.SHARDS];
        for (int key = 0, left = UnstableShards.SHARDS; left > 0; key += 0x0100_0001) {
            int shard = UnstableShards.shardOf(key);
            if (!found[shard]) {
                found[shard] = true;
                locks.add(domain.unstableLock(key));
                left--;
            }
        }
        return locks;
    }
}
