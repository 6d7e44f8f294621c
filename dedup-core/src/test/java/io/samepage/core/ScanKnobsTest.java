package io.samepage.core;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.samepage.hashing.Pages;
import java.util.SplittableRandom;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** Knobs refuse what KSM's sysfs handlers refuse, say why, and keep their old value. */
class ScanKnobsTest {

    @Test
    void defaultsAreKsmsExceptThatAnEngineRuns() {
        ScanKnobs knobs = new ScanKnobs();
        assertEquals(100, knobs.pagesToScan());
        assertEquals(20, knobs.sleepMillis());
        assertEquals(ScanKnobs.RUN_MERGE, knobs.run());
        assertEquals(256, knobs.maxPageSharing());
        assertEquals(false, knobs.useZeroPages());
        assertEquals(true, knobs.smartScan());
        assertEquals(AdvisorMode.NONE, knobs.advisorMode());
        assertEquals(70, knobs.advisorMaxCpu());
        assertEquals(200, knobs.advisorTargetScanTimeSeconds());
    }

    @Test
    void invalidValuesAreRefusedWithTheReasonAndChangeNothing() {
        ScanKnobs knobs = new ScanKnobs();
        assertRefused(() -> knobs.maxPageSharing(1), "max_page_sharing must be at least 2");
        assertRefused(() -> knobs.run(3), "run must be 0");
        assertRefused(() -> knobs.sleepMillis(-1), "sleep_millisecs");
        assertRefused(() -> knobs.pagesToScan(0), "pages_to_scan must be at least 1");
        assertRefused(() -> knobs.advisorMaxCpu(101), "advisor_max_cpu");
        assertRefused(() -> knobs.advisorTargetScanTimeSeconds(1), "advisor_target_scan_time");
        assertRefused(() -> knobs.advisorPagesToScanRange(100, 10), "advisor_max_pages_to_scan");
        assertEquals(256, knobs.maxPageSharing());
        assertEquals(ScanKnobs.RUN_MERGE, knobs.run());
        assertEquals(20, knobs.sleepMillis());
        assertEquals(100, knobs.pagesToScan());
    }

    @Test
    void pagesToScanIsRefusedWhileTheAdvisorSteersIt() {
        ScanKnobs knobs = new ScanKnobs().advisorMode(AdvisorMode.SCAN_TIME);
        assertEquals(500, knobs.pagesToScan(), "the advisor starts inside its own range");
        assertRefused(() -> knobs.pagesToScan(1000), "advisor_mode=scan-time");
        knobs.advisorMode(AdvisorMode.NONE).pagesToScan(1000);
        assertEquals(1000, knobs.pagesToScan());
    }

    @Test
    void maxPageSharingChangesOnlyWhileNothingIsShared() {
        ScanKnobs knobs = new ScanKnobs();
        long[] shared = {3};
        knobs.bind(change -> {
            if (shared[0] == 0) {
                change.run();
            }
            return shared[0];
        });
        DedupException refused = assertThrows(DedupException.class, () -> knobs.maxPageSharing(16));
        assertEquals(DedupException.Kind.KNOB_REFUSED, refused.kind());
        assertEquals("max_page_sharing cannot change from 256 to 16 while frames are shared (pages_shared 3); "
                + "unmerge first (run=2), then set it", refused.getMessage());
        assertEquals(256, knobs.maxPageSharing(), "a refused value changes nothing");
        knobs.maxPageSharing(256);
        shared[0] = 0;
        knobs.maxPageSharing(16);
        assertEquals(16, knobs.maxPageSharing());
    }

    @Test
    void getShowsEachKnobAsSetTakesIt() {
        ScanKnobs knobs = new ScanKnobs().pagesToScan(7).sleepMillis(8).run(0).maxPageSharing(9).useZeroPages(true)
                .smartScan(false).advisorMaxCpu(10).advisorTargetScanTimeSeconds(11).advisorPagesToScanRange(12, 13);
        ScanKnobs copy = new ScanKnobs();
        for (String name : ScanKnobs.NAMES) {
            copy.set(name, knobs.get(name));
        }
        for (String name : ScanKnobs.NAMES) {
            assertEquals(knobs.get(name), copy.get(name), name);
        }
        assertEquals("7", knobs.get("pages_to_scan"));
        assertEquals("1", knobs.get("use_zero_pages"));
        assertEquals("none", knobs.get("advisor_mode"));
        assertEquals("scan-time", knobs.advisorMode(AdvisorMode.SCAN_TIME).get("advisor_mode"));
        assertRefused(() -> knobs.get("pages"), "'pages' is not a knob");
    }

    /**
     * A value set could not parse was refused as "must be a whole number, not 'abc'", naming neither the
     * knob nor, for a flag, which flag: the daemon's config added the knob, so a bad value's line named it
     * once and a value out of range named it twice.
     */
    @Test
    void aValueThatDoesNotParseIsRefusedNamingTheKnobAndTheValue() {
        ScanKnobs knobs = new ScanKnobs();
        assertEquals("pages_to_scan must be a whole number, not 'abc'",
                assertThrows(DedupException.class, () -> knobs.set("pages_to_scan", "abc")).getMessage());
        assertEquals("max_page_sharing must be at most 2147483647, not 9999999999",
                assertThrows(DedupException.class, () -> knobs.set("max_page_sharing", "9999999999")).getMessage());
        assertEquals("use_zero_pages must be 0 or 1, not 'yes'",
                assertThrows(DedupException.class, () -> knobs.set("use_zero_pages", "yes")).getMessage());
        assertEquals("advisor_mode must be none or scan-time, not 'sometimes'",
                assertThrows(DedupException.class, () -> knobs.set("advisor_mode", "sometimes")).getMessage());
        for (String name : ScanKnobs.NAMES) {
            DedupException refused = assertThrows(DedupException.class, () -> knobs.set(name, "abc"));
            assertEquals(DedupException.Kind.INVALID_ARGUMENT, refused.kind(), name);
            assertTrue(refused.getMessage().startsWith(name + " must be ") && refused.getMessage().endsWith(", not 'abc'"),
                    refused.getMessage());
        }
        assertEquals(new ScanKnobs().pagesToScan(), knobs.pagesToScan(), "a refused value changes nothing");
    }

    /**
     * {@code max_page_sharing} changes only while no frame is shared, and no merge may file one between that
     * check and the write: filed under the old limit (2) a content's frames stand among its full ones, where
     * no lookup sees the room the new limit (4) gives them. A merge is started in that gap (the seam), and the
     * test waits until it has merged everything or waits for a domain's lock. After the change every frame
     * with room under the new limit is found: the guest's pages and a second guest's of the same content
     * fill three frames of four pages, with no fourth, and the engine's invariants hold.
     */
    @Test
    @Timeout(value = 60, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
    void aMergeBetweenMaxPageSharingsCheckAndItsWriteFilesUnderTheNewLimit() throws InterruptedException {
        int page = Pages.PAGE_SIZE;
        byte[] same = new byte[page];
        new SplittableRandom(11).nextBytes(same);
        EngineContext context = new EngineContext().poolBytes(16L << 20).hashSeed(7);
        context.knobs().maxPageSharing(2);
        try (DedupEngine engine = DedupEngine.create(context.conclude())) {
            MergeDomain domain = engine.createDomain("d");
            Guest first = engine.createGuest(domain, "first", 6L * page);
            for (int p = 0; p < 6; p++) {
                first.write((long) p * page, same, 0, page);
            }
            engine.scanner().scanFullPass();        // the first visit: every page waits for the next
            assertEquals(0, engine.counters().pagesShared(), "nothing merged before the change");
            AtomicReference<Throwable> failed = new AtomicReference<>();
            Thread merger = new Thread(() -> {
                try {
                    engine.scanner().scanFullPass();
                } catch (Throwable e) {
                    failed.set(e);
                }
            }, "merger");
            engine.knobs().beforeMaxPageSharingWrite(() -> {
                merger.start();
                while (merger.isAlive() && !domain.stableLock().hasQueuedThread(merger)) {
                    Thread.yield();
                }
            });
            engine.knobs().maxPageSharing(4);
            merger.join();
            assertEquals(null, failed.get(), "the merging scan");
            assertEquals(4, engine.knobs().maxPageSharing());
            EngineInvariants.assertConsistent(engine, engine.context().newScannerHasher(), "after the change");
            Guest second = engine.createGuest(domain, "second", 6L * page);
            for (int p = 0; p < 6; p++) {
                second.write((long) p * page, same, 0, page);
            }
            engine.scanner().scanUntilStable(Scanner.DEFAULT_MAX_FULL_SCANS_TO_SETTLE);
            EngineCounters counters = engine.counters();
            assertEquals(12, counters.pagesShared() + counters.pagesSharing(), "every page merged: " + counters);
            assertEquals(3, counters.pagesShared(), "12 pages in frames of 4, each found with room: " + counters);
            EngineInvariants.assertConsistent(engine, engine.context().newScannerHasher(), "after the second guest");
        }
    }

    /**
     * Lowering {@code max_page_sharing} is refused while any frame is shared, as KSM's sysfs handler refuses
     * it with EBUSY while {@code pages_shared} is not 0: a frame filed under the old limit would map more pages
     * than the new one allows. The refusal is one line naming the knob, both values and the frames shared,
     * and changes nothing; once {@code run=2} has unmerged everything, lowering is allowed, and the next merges
     * fill frames only up to the new limit. The engine's invariants are checked after every step.
     */
    @Test
    void loweringMaxPageSharingIsRefusedWhileFramesAreSharedThenMergesKeepTheNewLimit() {
        int page = Pages.PAGE_SIZE;
        byte[] same = new byte[page];
        new SplittableRandom(12).nextBytes(same);
        EngineContext context = new EngineContext().poolBytes(16L << 20).hashSeed(7);
        context.knobs().smartScan(false);
        try (DedupEngine engine = DedupEngine.create(context.conclude())) {
            Guest guest = engine.createGuest(engine.createDomain("d"), "g", 8L * page);
            for (int p = 0; p < 8; p++) {
                guest.write((long) p * page, same, 0, page);
            }
            engine.scanner().scanUntilStable(Scanner.DEFAULT_MAX_FULL_SCANS_TO_SETTLE);
            EngineCounters merged = engine.counters();
            assertEquals(1, merged.pagesShared(), "one frame for the eight pages: " + merged);
            assertEquals(7, merged.pagesSharing(), "one frame for the eight pages: " + merged);
            EngineInvariants.assertConsistent(engine, engine.context().newScannerHasher(), "merged at 256");

            DedupException refused = assertThrows(DedupException.class, () -> engine.knobs().maxPageSharing(2));
            assertEquals(DedupException.Kind.KNOB_REFUSED, refused.kind());
            assertEquals("max_page_sharing cannot change from 256 to 2 while frames are shared (pages_shared 1); "
                    + "unmerge first (run=2), then set it", refused.getMessage());
            assertEquals(256, engine.knobs().maxPageSharing(), "a refused value changes nothing");
            assertEquals(8, engine.pool().table().refCount(guest.frameAt(0)), "the frame still maps every page");
            EngineInvariants.assertConsistent(engine, engine.context().newScannerHasher(), "after the refusal");

            engine.knobs().run(ScanKnobs.RUN_UNMERGE);
            engine.scanner().doWork();
            assertEquals(0, engine.counters().pagesShared(), "run=2 unmerged everything");
            EngineInvariants.assertConsistent(engine, engine.context().newScannerHasher(), "after run=2");

            engine.knobs().maxPageSharing(2);
            assertEquals(2, engine.knobs().maxPageSharing(), "allowed once nothing is shared");
            EngineInvariants.assertConsistent(engine, engine.context().newScannerHasher(), "lowered to 2");

            engine.knobs().run(ScanKnobs.RUN_MERGE);
            engine.scanner().scanUntilStable(Scanner.DEFAULT_MAX_FULL_SCANS_TO_SETTLE);
            EngineCounters again = engine.counters();
            assertEquals(4, again.pagesShared(), "eight pages in frames of two: " + again);
            assertEquals(4, again.pagesSharing(), "every page merged: " + again);
            for (int p = 0; p < 8; p++) {
                assertEquals(2, engine.pool().table().refCount(guest.frameAt(p)), "page " + p + "'s frame");
            }
            EngineInvariants.assertConsistent(engine, engine.context().newScannerHasher(), "merged at 2");
        }
    }

    private static void assertRefused(org.junit.jupiter.api.function.Executable change, String reason) {
        DedupException refused = assertThrows(DedupException.class, change);
        assertTrue(refused.getMessage().contains(reason), refused.getMessage());
    }
}
