package io.samepage.core;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.samepage.hashing.Pages;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/**
 * A large guest that wrote little (a WebAssembly instance that reserved its linear memory, a VM with
 * mostly untouched RAM): a full scan costs the batches' budget its written pages and a 64th of a visit
 * per page with nothing to visit, on 1, 2 and 4 scanner threads alike. Main charged every never-written
 * page a whole visit, so with KSM's 100 pages a batch a full scan of 1 GiB took 2,622 batches whatever
 * was written. Costs are read from the scanner's own counts (batches, pages visited), never from time.
 */
class SparseGuestScanTest {

    private static final int PAGE = Pages.PAGE_SIZE;
    private static final long GUEST_BYTES = 1L << 30;
    private static final int PAGES = (int) (GUEST_BYTES / PAGE);
    /** KSM's default {@code pages_to_scan}. */
    private static final int BUDGET = ScanKnobs.DEFAULT_PAGES_TO_SCAN;
    private static final int[] THREADS = {1, 2, 4};

    private static DedupEngine engine(int threads) {
        EngineContext context = new EngineContext().poolBytes(64L << 20).hashSeed(5);
        context.knobs().scanThreads(threads).smartScan(false);
        return DedupEngine.create(context.conclude());
    }

    /** Every 100th page: 1% written, spread. */
    private static boolean[] spread() {
        boolean[] written = new boolean[PAGES];
        for (int p = 0; p < PAGES; p += 100) {
            written[p] = true;
        }
        return written;
    }

    /** About 1% written in 8 clusters of 330 pages, at random places. */
    private static boolean[] clustered() {
        boolean[] written = new boolean[PAGES];
        SplittableRandom random = new SplittableRandom(7);
        for (int c = 0; c < 8; c++) {
            int first = random.nextInt(PAGES - 330);
            java.util.Arrays.fill(written, first, first + 330, true);
        }
        return written;
    }

    /** Writes the marked pages, one content in 500 repeated, so that the scans also merge. */
    private static int write(Guest guest, boolean[] written) {
        byte[] bytes = new byte[PAGE];
        int count = 0;
        for (int p = 0; p < written.length; p++) {
            if (written[p]) {
                new SplittableRandom(p % 500).nextBytes(bytes);
                guest.write((long) p * PAGE, bytes, 0, PAGE);
                count++;
            }
        }
        return count;
    }

    /** The batches of {@link #BUDGET} one full scan takes from a full scan's boundary, and the pages they visited. */
    private static long[] batchesAndVisitsOfOneFullScan(Scanner scanner) {
        long target = scanner.fullScans() + 1;
        long batches = 0;
        long visited = 0;
        while (scanner.fullScans() < target) {
            visited += scanner.scanBatch(BUDGET);
            batches++;
        }
        return new long[] {batches, visited};
    }

    @Test
    void aSparseGuestsFullScanCostsItsWrittenPagesAndA64thOfAVisitForEveryOtherPage() {
        for (String layout : new String[] {"spread", "clustered"}) {
            long[] settledOnOne = null;
            for (int threads : THREADS) {
                String where = layout + ", " + threads + " threads";
                try (DedupEngine engine = engine(threads)) {
                    Guest guest = engine.createGuest(engine.createDomain("d"), "sparse", GUEST_BYTES);
                    int written = write(guest, layout.equals("spread") ? spread() : clustered());
                    Scanner scanner = engine.scanner();
                    for (int scan = 0; scan < 3; scan++) {
                        long scannedBefore = scanner.pagesScanned();
                        long[] cost = batchesAndVisitsOfOneFullScan(scanner);
                        long passedBy = PAGES - written;
                        // Every batch but the last spent its whole budget, in 64ths of a visit.
                        long spent = (long) written * ScanCursor.PASSES_PER_VISIT + passedBy;
                        assertTrue((cost[0] - 1) * BUDGET * ScanCursor.PASSES_PER_VISIT <= spent, where + ", scan " + scan
                                + ": " + cost[0] + " batches of " + BUDGET + " for " + written + " written pages among "
                                + PAGES + "; at most " + (spent / (BUDGET * ScanCursor.PASSES_PER_VISIT) + 1) + " expected");
                        assertEquals(written, cost[1], where + ", scan " + scan + ": pages visited, each written page once");
                        assertEquals(written, scanner.pagesScanned() - scannedBefore, where + ", scan " + scan + ": pages_scanned");
                    }
                    scanner.scanUntilStable(Scanner.DEFAULT_MAX_FULL_SCANS_TO_SETTLE, BUDGET, () -> { });
                    EngineInvariants.assertConsistent(engine, engine.context().newScannerHasher(), where);
                    EngineCounters c = engine.counters();
                    long[] settled = {c.pagesShared(), c.pagesSharing(), c.pagesUnshared(), c.pagesVolatile()};
                    assertTrue(c.pagesSharing() > 0, where + ": the written pages merge: " + c);
                    if (settledOnOne == null) {
                        settledOnOne = settled;
                    }
                    assertArrayEquals(settledOnOne, settled, where + ": the counters one thread settles at");
                }
            }
        }
    }

    /**
     * A guest that wrote nothing: each batch passes exactly 64 times its budget in pages by and visits
     * none, so a batch over any empty guest ends, and the full scan takes {@code pages / (64 * budget)}
     * batches. A batch that only passed pages by is not taken for "no live guest" by {@link
     * Scanner#scanUntilStable}.
     */
    @Test
    void aBatchOverAGuestThatWroteNothingPasses64PagesByPerPageOfItsBudgetAndVisitsNone() {
        for (int threads : THREADS) {
            try (DedupEngine engine = engine(threads)) {
                engine.createGuest(engine.createDomain("d"), "empty", GUEST_BYTES);
                Scanner scanner = engine.scanner();
                long[] cost = batchesAndVisitsOfOneFullScan(scanner);
                int perBatch = BUDGET * ScanCursor.PASSES_PER_VISIT;
                assertEquals((PAGES + perBatch - 1) / perBatch, cost[0], threads + " threads: batches of a full scan");
                assertEquals(0, cost[1], threads + " threads: pages visited");
                assertEquals(0, scanner.pagesScanned(), threads + " threads: pages_scanned");
                assertEquals(2, scanner.scanUntilStable(2, BUDGET, () -> { }), threads + " threads: full scans until stable");
            }
        }
    }

    /**
     * A page written after the cursor passed it by waits for the next full scan; one written ahead of
     * the cursor is visited in this one. After ten batches of 100 over an empty guest the cursor stands
     * at page 64,000 exactly, on any number of threads.
     */
    @Test
    void aPageWrittenBehindTheCursorWaitsForTheNextFullScanAndOneAheadIsVisitedInThisOne() {
        for (int threads : THREADS) {
            try (DedupEngine engine = engine(threads)) {
                Guest guest = engine.createGuest(engine.createDomain("d"), "empty", GUEST_BYTES);
                Scanner scanner = engine.scanner();
                for (int batch = 0; batch < 10; batch++) {
                    assertEquals(0, scanner.scanBatch(BUDGET), threads + " threads: a batch over never-written pages visits none");
                }
                int cursorAt = 10 * BUDGET * ScanCursor.PASSES_PER_VISIT;
                guest.write((long) (cursorAt - 1) * PAGE, new byte[] {1}, 0, 1);         // passed by already
                guest.write((long) cursorAt * PAGE, new byte[] {2}, 0, 1);               // next to look at
                guest.write((long) (PAGES - 1) * PAGE, new byte[] {3}, 0, 1);            // the last page
                long visited = 0;
                while (scanner.fullScans() == 0) {
                    visited += scanner.scanBatch(BUDGET);
                }
                assertEquals(2, visited, threads + " threads: pages visited in the rest of the first full scan");
                assertEquals(2, scanner.pagesScanned(), threads + " threads: the pages ahead of the cursor");
                scanner.scanFullPass();
                assertEquals(2 + 3, scanner.pagesScanned(), threads + " threads: the next full scan visits all three");
            }
        }
    }
}
