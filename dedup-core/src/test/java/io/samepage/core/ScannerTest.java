package io.samepage.core;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.samepage.hashing.Pages;
import java.util.Arrays;
import java.util.SplittableRandom;
import org.agrona.concurrent.AgentRunner;
import org.agrona.concurrent.SleepingMillisIdleStrategy;
import org.junit.jupiter.api.Test;

/** The scanner's pacing, smart scan, advisor and zero frames. */
class ScannerTest {

    private static final int PAGE = Pages.PAGE_SIZE;

    private static DedupEngine engine(EngineContext context) {
        return DedupEngine.create(context.poolBytes(64L << 20).hashSeed(5).conclude());
    }

    private static void writeUnique(Guest guest, long seed) {
        byte[] bytes = new byte[(int) guest.sizeBytes()];
        new SplittableRandom(seed).nextBytes(bytes);
        guest.write(0, bytes, 0, bytes.length);
    }

    @Test
    void smartScanSkipsPagesThatStayUniqueLongerTheLongerTheyStaySo() {
        for (boolean smart : new boolean[] {false, true}) {
            EngineContext context = new EngineContext();
            context.knobs().smartScan(smart);
            try (DedupEngine engine = engine(context)) {
                Guest guest = engine.createGuest(engine.createDomain("d"), "unique", 16 * PAGE);
                writeUnique(guest, 1);
                for (int scan = 0; scan < 20; scan++) {
                    engine.scanner().scanFullPass();
                }
                EngineCounters counters = engine.counters();
                assertEquals(20L * 16, counters.pagesScanned());
                if (smart) {
                    assertTrue(counters.pagesSkipped() > 16 * 10L, "skipped " + counters.pagesSkipped());
                } else {
                    assertEquals(0, counters.pagesSkipped());
                }
            }
        }
    }

    /**
     * A new pair shares the lower of its two frames, whichever page the scanner reached first, so that
     * threads racing for a pair leave the guests' frames in the same order as one thread does.
     */
    @Test
    void aNewPairKeepsTheLowerOfItsTwoFrames() {
        try (DedupEngine engine = engine(new EngineContext())) {
            MergeDomain domain = engine.createDomain("d");
            Guest first = engine.createGuest(domain, "scanned-first", PAGE);
            Guest second = engine.createGuest(domain, "scanned-second", PAGE);
            byte[] page = new byte[PAGE];
            Arrays.fill(page, (byte) 7);
            second.write(0, page, 0, PAGE);         // written first: the lower frame
            first.write(0, page, 0, PAGE);
            int lower = second.frameAt(0);
            assertTrue(lower < first.frameAt(0), "frames are handed out in order");
            engine.scanner().scanFullPass();
            engine.scanner().scanFullPass();
            assertTrue(first.isMerged(0) && second.isMerged(0), "merged");
            assertEquals(lower, first.frameAt(0), "the candidate (scanned first) now maps the lower frame");
            assertEquals(lower, second.frameAt(0));
        }
    }

    @Test
    void scannerMergesWhenRunByAnAgentRunnerAndIdlesAtRunZero() throws Exception {
        EngineContext context = new EngineContext();
        context.knobs().pagesToScan(8).sleepMillis(1);
        try (DedupEngine engine = engine(context)) {
            MergeDomain domain = engine.createDomain("d");
            byte[] page = new byte[PAGE];
            Arrays.fill(page, (byte) 3);
            for (int i = 0; i < 4; i++) {
                Guest guest = engine.createGuest(domain, "vm" + i, 8 * PAGE);
                for (int p = 0; p < 8; p++) {
                    guest.write((long) p * PAGE, page, 0, PAGE);
                }
            }
            AgentRunner runner = new AgentRunner(new SleepingMillisIdleStrategy(1), Throwable::printStackTrace,
                    null, engine.scanner());
            AgentRunner.startOnThread(runner);
            try {
                long deadline = System.nanoTime() + 60_000_000_000L;
                while (engine.counters().pagesSharing() < 31 && System.nanoTime() < deadline) {
                    Thread.sleep(5);
                }
            } finally {
                runner.close();
            }
            EngineCounters counters = engine.counters();
            assertEquals(1, counters.pagesShared(), "32 equal pages in one domain become one frame");
            assertEquals(31, counters.pagesSharing());
            engine.knobs().run(ScanKnobs.RUN_STOP);
            long scanned = engine.scanner().pagesScanned();
            assertEquals(0, engine.scanner().doWork());
            assertEquals(scanned, engine.scanner().pagesScanned());
        }
    }

    /**
     * A duty cycle whose batch only passed never-written pages by reports that work (a 64th of a visit a
     * page), so an {@code AgentRunner}'s idle strategy does not idle after it: with {@code sleep_millisecs}
     * 0 (or below the runner's idle period) each batch over a sparse guest otherwise waited an idle period
     * that a batch of visits does not. With no guest, there is no work, and it reports none.
     */
    @Test
    void aDutyCycleThatOnlyPassedPagesByReportsItsWork() {
        EngineContext context = new EngineContext();
        context.knobs().pagesToScan(100).sleepMillis(0);
        try (DedupEngine engine = engine(context)) {
            assertEquals(0, engine.scanner().doWork(), "no guest: nothing to do");
            engine.createGuest(engine.createDomain("d"), "sparse", 4L * 64 * 100 * PAGE);
            int work = engine.scanner().doWork();
            assertEquals(0, engine.scanner().pagesScanned(), "no page was visited");
            assertEquals(0, engine.scanner().fullScans(), "the full scan goes on");
            assertEquals(100, work, "6,400 pages passed by, a 64th of a visit each");
        }
    }

    @Test
    void onlyPagesWrittenSinceTheirLastVisitAreHashedAgain() {
        java.util.concurrent.atomic.AtomicLong hashes = new java.util.concurrent.atomic.AtomicLong();
        io.samepage.hashing.PageHasher real = io.samepage.hashing.HashAlgorithm.CRC32C.newHasher(1);
        io.samepage.hashing.PageHasher counting = WeakHashers.around(real, hashes::incrementAndGet);
        EngineContext context = new EngineContext().customHasher(counting);
        context.knobs().smartScan(false);
        try (DedupEngine engine = engine(context)) {
            Guest guest = engine.createGuest(engine.createDomain("d"), "g", 16 * PAGE);
            writeUnique(guest, 3);
            long before = hashes.get();
            engine.scanner().scanFullPass();
            assertEquals(before, hashes.get(), "a first visit reads nothing: the next one hashes and compares");
            engine.scanner().scanFullPass();
            long afterFirst = hashes.get();
            assertEquals(before + 16, afterFirst, "the second visit hashes every page");
            engine.scanner().scanFullPass();
            assertEquals(afterFirst, hashes.get(), "nothing was written, nothing is hashed again");
            guest.write(5 * PAGE + 7, new byte[] {1, 2}, 0, 2);
            engine.scanner().scanFullPass();
            assertEquals(afterFirst + 1, hashes.get(), "only the written page");
            assertEquals(16, engine.counters().pagesUnshared() + engine.counters().pagesVolatile());
        }
    }

    @Test
    void theAdvisorScalesPagesToScanTowardTheTargetScanTimeUnderTheCpuCap() {
        long second = 1_000_000_000L;
        assertEquals(1000, ScanTimeAdvisor.advisedPagesToScan(1000, 200 * second, 0, 200, 70), "on target: unchanged");
        assertEquals(1300, ScanTimeAdvisor.advisedPagesToScan(1000, 400 * second, 0, 200, 70),
                "twice too slow: 30% of the way to 2000");
        assertEquals(850, ScanTimeAdvisor.advisedPagesToScan(1000, 100 * second, 0, 200, 70), "twice too fast");
        assertEquals(914, ScanTimeAdvisor.advisedPagesToScan(1000, 400 * second, 280 * second, 200, 50),
                "70% CPU against a 50% cap: the cap wins (0.3 * 714.3 + 700)");
    }

    @Test
    void theAdvisorKeepsPagesToScanWithinItsRange() {
        EngineContext context = new EngineContext();
        context.knobs().advisorPagesToScanRange(64, 128).advisorMode(AdvisorMode.SCAN_TIME);
        try (DedupEngine engine = engine(context)) {
            writeUnique(engine.createGuest(engine.createDomain("d"), "g", 32 * PAGE), 2);
            for (int scan = 0; scan < 5; scan++) {
                engine.scanner().scanFullPass();
                int pages = engine.knobs().pagesToScan();
                assertTrue(pages >= 64 && pages <= 128, "pages_to_scan " + pages);
            }
        }
    }

    @Test
    void eachDomainHasItsOwnZeroFrameUnlessTheyShareOne() {
        for (boolean share : new boolean[] {false, true}) {
            EngineContext context = new EngineContext().shareZeroFrameAcrossDomains(share);
            context.knobs().useZeroPages(true);
            try (DedupEngine engine = engine(context)) {
                Guest a = engine.createGuest(engine.createDomain("one"), "a", 2 * PAGE);
                Guest b = engine.createGuest(engine.createDomain("two"), "b", 2 * PAGE);
                assertEquals(share ? 1 : 2, engine.framesInUse(), "zero frames");
                a.write(0, new byte[PAGE], 0, PAGE);
                b.write(0, new byte[PAGE], 0, PAGE);
                engine.scanner().scanFullPass();
                engine.scanner().scanFullPass();
                assertEquals(2, engine.counters().ksmZeroPages());
                assertEquals(share ? 1 : 2, engine.framesInUse(), "zero pages take no frame of their own");
                assertEquals(0, a.readByte(10));
                b.write(10, new byte[] {7}, 0, 1);
                assertEquals(7, b.readByte(10));
                assertEquals(0, a.readByte(10));
            }
        }
    }
}
