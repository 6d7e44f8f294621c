package io.samepage.core;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

/**
 * The scan position never wraps: a round over the largest guest a page table holds (2^31 - 9 pages)
 * visits its last chunks in order and ends. Main kept the chunk start in an {@code int}, and
 * {@code chunkStart + 64} wrapped negative for guests of 2^31 - 63 to 2^31 - 9 pages, so every batch
 * after it threw; this test drives the same arithmetic without a 32 GiB page table.
 */
class ScanCursorTest {

    @Test
    void theLastChunksOfTheLargestGuestAreVisitedInOrderAndTheRoundEnds() {
        for (int pages : new int[] {Integer.MAX_VALUE - 63, Integer.MAX_VALUE - 9, Integer.MAX_VALUE - 8}) {
            ScanCursor cursor = new ScanCursor();
            cursor.start(new int[] {pages, 100});
            long from = pages - 300L;
            cursor.seekChunkOf(from);
            long expected = from / ScanCursor.CHUNK_PAGES * ScanCursor.CHUNK_PAGES;
            int visits = 0;
            for (int g; (g = cursor.nextRun(ScanCursor.PASSES_PER_VISIT)) >= 0; visits++) {
                assertEquals(0, g, "only the large guest has pages this far");
                assertEquals(expected++, cursor.page(), pages + " pages: visits stay in order");
            }
            assertEquals(pages, expected, pages + " pages: the round ends after the guest's last page");
            assertTrue(visits > 0);
        }
    }

    @Test
    void aRoundVisitsChunkZeroOfEveryGuestThenChunkOne() {
        int c = ScanCursor.CHUNK_PAGES;
        ScanCursor cursor = new ScanCursor();
        cursor.start(new int[] {c + 6, 2, c + 1});
        StringBuilder order = new StringBuilder();
        for (int g; (g = cursor.nextRun(ScanCursor.PASSES_PER_VISIT)) >= 0; ) {
            long p = cursor.page();
            if (p == 0 || p == 1 || p == c - 1 || p == c) {
                order.append(g).append(':').append(p == c - 1 ? "last" : p == c ? "next" : p).append(' ');
            }
        }
        assertEquals("0:0 0:1 0:last 1:0 1:1 2:0 2:1 2:last 0:next 2:next ", order.toString());
    }

    /**
     * {@link ScanCursor#nextRun} moves past the same pages in the same order whatever the allowance of
     * each call (one visit's, or many), including runs cut short by the allowance and guests that end
     * inside a chunk.
     */
    @Test
    void runsCoverTheSamePagesInTheSameOrderAsSinglePages() {
        int[] pageCounts = {70, 2, 0, 65, 300, 1};
        java.util.List<Long> expected = new java.util.ArrayList<>();
        ScanCursor single = new ScanCursor();
        single.start(pageCounts);
        for (int g; (g = single.nextRun(ScanCursor.PASSES_PER_VISIT)) >= 0; ) {
            expected.add((long) g << 32 | single.page());
        }
        java.util.SplittableRandom random = new java.util.SplittableRandom(5);
        for (int trial = 0; trial < 50; trial++) {
            ScanCursor runs = new ScanCursor();
            runs.start(pageCounts);
            java.util.List<Long> seen = new java.util.ArrayList<>();
            int most = trial % 2 == 0 ? 64 : 100;
            for (int g; (g = runs.nextRun(ScanCursor.PASSES_PER_VISIT * (1L + random.nextInt(most)))) >= 0; ) {
                assertTrue(runs.runLength() >= 1 && runs.runLength() <= ScanCursor.CHUNK_PAGES, "run of " + runs.runLength());
                for (int i = 0; i < runs.runLength(); i++) {
                    seen.add((long) g << 32 | (runs.page() + i));
                }
            }
            assertEquals(expected, seen, "trial " + trial);
        }
    }

    /**
     * Over page tables, the runs hold exactly the pages the visitor would not pass by, in the round's
     * order, and every other page is passed by once; a call passes by no more pages than its allowance
     * and starts no more visits than what is left of it pays for (the last may overdraw it).
     */
    @Test
    void runsOverPageTablesHoldThePagesToVisitAndEachCallStaysWithinItsAllowance() {
        int zeroFrame = 0;
        int[] pageCounts = {1300, 5, 0, 700, 2 * ScanCursor.CHUNK_PAGES + 3};
        java.util.SplittableRandom random = new java.util.SplittableRandom(11);
        PageTable[] tables = new PageTable[pageCounts.length];
        for (int g = 0; g < tables.length; g++) {
            tables[g] = new PageTable(pageCounts[g], 0, zeroFrame);
            for (int p = 0; p < pageCounts[g]; p++) {
                boolean cluster = (p / 100) % 3 == 0;       // dense clusters among sparse stretches
                if (random.nextInt(100) >= (cluster ? 90 : 3)) {
                    if (random.nextInt(8) == 0) {
                        tables[g].set(p, zeroFrame, PageTable.SCAN_HISTORY);    // written, visited, then unmapped
                    }
                    continue;
                }
                switch (random.nextInt(5)) {
                    case 0 -> tables[g].set(p, zeroFrame, PageTable.ZERO_MERGED);
                    case 1 -> tables[g].set(p, 7, PageTable.HOLE);
                    case 2 -> tables[g].set(p, 8, PageTable.STABLE);
                    case 3 -> tables[g].set(p, 9, PageTable.DIRTY);
                    default -> tables[g].set(p, 10, PageTable.SCAN_HISTORY);
                }
            }
        }
        java.util.List<Long> expected = new java.util.ArrayList<>();
        long total = 0;
        ScanCursor single = new ScanCursor();
        single.start(pageCounts);
        for (int g; (g = single.nextRun(ScanCursor.PASSES_PER_VISIT)) >= 0; total++) {
            int p = single.page();
            if (!PageTable.passedBy(tables[g].frames[p], tables[g].states[p], zeroFrame)) {
                expected.add((long) g << 32 | p);
            }
        }
        assertTrue(expected.size() > 300 && expected.size() < total / 2, expected.size() + " of " + total + " to visit");
        for (int trial = 0; trial < 50; trial++) {
            ScanCursor runs = new ScanCursor();
            runs.start(tables);
            java.util.List<Long> seen = new java.util.ArrayList<>();
            long passed = 0;
            while (true) {
                long allowance = trial % 2 == 0 ? 1 + random.nextInt(200) : ScanCursor.PASSES_PER_VISIT * (1L + random.nextInt(40));
                int g = runs.nextRun(allowance);
                passed += runs.passed();
                assertTrue(runs.passed() <= allowance, "passed " + runs.passed() + " on an allowance of " + allowance);
                if (g == -1) {
                    break;
                }
                if (g == ScanCursor.ALLOWANCE_SPENT) {
                    assertEquals(allowance, runs.passed(), "found nothing to visit before the allowance was spent");
                    continue;
                }
                long affordable = (allowance - runs.passed() + ScanCursor.PASSES_PER_VISIT - 1) / ScanCursor.PASSES_PER_VISIT;
                assertTrue(runs.runLength() >= 1 && runs.runLength() <= affordable,
                        "run of " + runs.runLength() + " with " + (allowance - runs.passed()) + " of the allowance left");
                for (int i = 0; i < runs.runLength(); i++) {
                    seen.add((long) g << 32 | (runs.page() + i));
                }
            }
            assertEquals(expected, seen, "trial " + trial);
            assertEquals(total - expected.size(), passed, "trial " + trial + ": every other page passed by once");
        }
    }

    /**
     * A chunk whose whole look found no page to pass by is marked and then listed without a look ({@link
     * PageTable#chunkAllToVisit}); a page that turns into one to pass by (released, or a hole taken out
     * of the unstable index), even during a look, takes the mark off, so the runs stay exactly the pages
     * to visit. Without the mark's reset in {@code set} the runs listed the released page.
     */
    @Test
    void aChunkFoundWithNothingToPassByIsMarkedUntilAPageTurnsIntoOneToPassBy() {
        int zeroFrame = 0;
        int pages = 2 * ScanCursor.CHUNK_PAGES;
        PageTable table = new PageTable(pages, 0, zeroFrame);
        for (int p = 0; p < pages; p++) {
            table.set(p, 10 + p, PageTable.SCAN_HISTORY);
        }
        assertEquals(java.util.List.of(0, ScanCursor.CHUNK_PAGES), runStarts(table, pages), "one run a chunk");
        assertTrue(table.chunkAllToVisit(0) && table.chunkAllToVisit(1), "both chunks looked at whole, nothing to pass by");

        table.set(5, 7, PageTable.HOLE);                    // released: one to pass by
        assertFalse(table.chunkAllToVisit(0), "a page released");
        assertTrue(table.chunkAllToVisit(1), "the other chunk keeps its mark");
        assertEquals(java.util.List.of(0, 6, ScanCursor.CHUNK_PAGES), runStarts(table, pages - 1), "page 5 passed by");
        assertFalse(table.chunkAllToVisit(0), "a chunk with a page to pass by is not marked");

        int filed = ScanCursor.CHUNK_PAGES + 7;
        table.setInUnstable(filed);
        table.set(filed, 7, PageTable.HOLE);                // a filed hole is visited: its visit takes it out
        assertEquals(java.util.List.of(0, 6, ScanCursor.CHUNK_PAGES), runStarts(table, pages - 1), "the filed hole listed");
        assertTrue(table.chunkAllToVisit(1), "looked at again: nothing to pass by");
        table.clearInUnstable(filed);
        assertFalse(table.chunkAllToVisit(1), "the hole, no longer filed, is one to pass by");
        assertEquals(java.util.List.of(0, 6, ScanCursor.CHUNK_PAGES, filed + 1), runStarts(table, pages - 2), "passed by");

        table.set(5, 11, PageTable.SCAN_HISTORY);
        table.set(filed, 12, PageTable.SCAN_HISTORY);
        table.startChunkLook(0);
        table.set(9, 7, PageTable.HOLE);                    // during a look: the look's end must not mark it
        table.endChunkLook(0);
        assertFalse(table.chunkAllToVisit(0), "a page released during the look");
    }

    /** The first page of each run of a whole round over {@code table}; {@code toVisit} pages in all. */
    private static java.util.List<Integer> runStarts(PageTable table, int toVisit) {
        ScanCursor cursor = new ScanCursor();
        cursor.start(new PageTable[] {table});
        java.util.List<Integer> starts = new java.util.ArrayList<>();
        int visited = 0;
        for (int g; (g = cursor.nextRun(Long.MAX_VALUE / 2)) != ScanCursor.ROUND_DONE; ) {
            if (g >= 0) {
                starts.add(cursor.page());
                visited += cursor.runLength();
            }
        }
        assertEquals(toVisit, visited, "pages listed");
        return starts;
    }
}
