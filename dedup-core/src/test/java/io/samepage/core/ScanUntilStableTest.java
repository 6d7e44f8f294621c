package io.samepage.core;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.samepage.hashing.Pages;
import java.util.Arrays;
import org.junit.jupiter.api.Test;

/** {@link Scanner#scanUntilStable}: the one "scan until two full scans change nothing". */
class ScanUntilStableTest {

    private static final int PAGE = Pages.PAGE_SIZE;

    private static DedupEngine engine() {
        EngineContext context = new EngineContext().poolBytes(1L << 20);
        context.knobs().smartScan(false);
        return DedupEngine.create(context.conclude());
    }

    /** Three guests of two pages; page 0 holds the same bytes in each. */
    private static void threeGuestsWithOneCommonPage(DedupEngine engine) {
        MergeDomain domain = engine.createDomain("d");
        byte[] page = new byte[PAGE];
        Arrays.fill(page, (byte) 7);
        for (int g = 0; g < 3; g++) {
            engine.createGuest(domain, "vm" + g, 2 * PAGE).write(0, page, 0, page.length);
        }
    }

    @Test
    void stopsOnlyWhenAFurtherFullScanChangesNothing() {
        try (DedupEngine engine = engine()) {
            threeGuestsWithOneCommonPage(engine);
            int scans = engine.scanner().scanUntilStable(Scanner.DEFAULT_MAX_FULL_SCANS_TO_SETTLE);
            EngineCounters settled = engine.counters();
            assertEquals(scans, settled.fullScans());
            assertEquals(2, settled.pagesSharing());
            long merges = engine.scanner().merges();
            engine.scanner().scanFullPass();
            EngineCounters again = engine.counters();
            assertEquals(settled.pagesShared(), again.pagesShared());
            assertEquals(settled.pagesSharing(), again.pagesSharing());
            assertEquals(settled.pagesUnshared(), again.pagesUnshared());
            assertEquals(merges, engine.scanner().merges());
        }
    }

    @Test
    void batchesOfAnySizeSettleInTheSameFullScansAndTheCallbackSeesEveryBatch() {
        int wholeScans;
        try (DedupEngine engine = engine()) {
            threeGuestsWithOneCommonPage(engine);
            wholeScans = engine.scanner().scanUntilStable(Scanner.DEFAULT_MAX_FULL_SCANS_TO_SETTLE);
        }
        try (DedupEngine engine = engine()) {
            threeGuestsWithOneCommonPage(engine);
            int[] batches = {0};
            int scans = engine.scanner().scanUntilStable(Scanner.DEFAULT_MAX_FULL_SCANS_TO_SETTLE, 1,
                    () -> batches[0]++);
            assertEquals(wholeScans, scans);
            assertEquals(2, engine.counters().pagesSharing());
            assertTrue(batches[0] >= scans * 3, "one visit a batch, three written pages a full scan: " + batches[0]);
        }
    }

    @Test
    void memoryThatKeepsChangingIsReportedAsNotSettledAfterTheBound() {
        try (DedupEngine engine = engine()) {
            threeGuestsWithOneCommonPage(engine);
            // After every batch vm0 writes its page 1 with page 0's bytes: each full scan merges it again.
            Guest changing = engine.guests().getFirst();
            byte[] common = new byte[PAGE];
            changing.read(0, common, 0, PAGE);
            DedupException e = assertThrows(DedupException.class, () -> engine.scanner().scanUntilStable(5,
                    Scanner.FULL_PASS_BATCH_PAGES, () -> changing.write(PAGE, common, 0, PAGE)));
            assertEquals(DedupException.Kind.NOT_SETTLED, e.kind());
            assertTrue(e.getMessage().startsWith("the counters still changed after 5 full scans"), e.getMessage());
            assertEquals(5, engine.counters().fullScans(), "the bound is the number of full scans run");
            assertEquals(2, engine.counters().pagesSharing(), "page 0's merges stand; the last write broke page 1's");
        }
    }

    @Test
    void anEngineWithoutGuestsIsStableAtOnceAndBadBoundsAreRefused() {
        try (DedupEngine engine = engine()) {
            assertEquals(0, engine.scanner().scanUntilStable(Scanner.DEFAULT_MAX_FULL_SCANS_TO_SETTLE));
            assertEquals(DedupException.Kind.INVALID_ARGUMENT,
                    assertThrows(DedupException.class, () -> engine.scanner().scanUntilStable(1)).kind());
            assertEquals(DedupException.Kind.INVALID_ARGUMENT, assertThrows(DedupException.class,
                    () -> engine.scanner().scanUntilStable(8, 0, () -> { })).kind());
        }
    }

    /**
     * With smart_scan, as in KSM, a page that stays alone is skipped for more and more scans, and a skipped
     * page counts as volatile rather than unshared. Pages last written at different times are skipped out
     * of step, so the split between unshared and volatile moves at every scan though nothing changes.
     * Settled means no merge and the same shared, sharing and (unshared + volatile).
     */
    @Test
    void smartScanSettlesThoughSkippedPagesMoveBetweenUnsharedAndVolatile() {
        EngineContext context = new EngineContext().poolBytes(1L << 20);
        context.knobs().smartScan(true);
        try (DedupEngine engine = DedupEngine.create(context.conclude())) {
            MergeDomain domain = engine.createDomain("d");
            Guest[] guests = {engine.createGuest(domain, "vm0", 64L * PAGE), engine.createGuest(domain, "vm1", 64L * PAGE)};
            byte[] page = new byte[PAGE];
            for (int scan = 0; scan < 64; scan++) {
                // Page p of each guest is last written before scan p: twins for p < 4, else its own content.
                for (int g = 0; g < 2; g++) {
                    Arrays.fill(page, (byte) (scan < 4 ? 1 + scan : 16 + 64 * g + scan));
                    guests[g].write((long) scan * PAGE, page, 0, PAGE);
                }
                engine.scanner().scanFullPass();
            }
            // Nothing is left to merge and nothing changes: two quiet scans are all it takes. Counting
            // unshared and volatile apart, the split moved at most scans (24, 22, 20, 18, 16, 16, 14, ...
            // unshared here) and a settle took as many scans as luck gave it, or failed (NOT_SETTLED).
            assertEquals(2, engine.scanner().scanUntilStable(Scanner.DEFAULT_MAX_FULL_SCANS_TO_SETTLE));
            EngineCounters c = engine.counters();
            assertEquals(4, c.pagesShared());
            assertEquals(4, c.pagesSharing());
            assertEquals(120, c.pagesUnshared() + c.pagesVolatile());
        }
    }
}
