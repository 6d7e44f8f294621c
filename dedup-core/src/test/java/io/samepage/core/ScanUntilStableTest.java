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
            assertTrue(batches[0] >= scans * 6, "one page a batch, six pages a full scan: " + batches[0]);
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
}
