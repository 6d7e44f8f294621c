package io.samepage.core;

import static org.junit.jupiter.api.Assertions.assertEquals;
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
            for (int g; (g = cursor.next()) >= 0; visits++) {
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
        for (int g; (g = cursor.next()) >= 0; ) {
            long p = cursor.page();
            if (p == 0 || p == 1 || p == c - 1 || p == c) {
                order.append(g).append(':').append(p == c - 1 ? "last" : p == c ? "next" : p).append(' ');
            }
        }
        assertEquals("0:0 0:1 0:last 1:0 1:1 2:0 2:1 2:last 0:next 2:next ", order.toString());
    }

    /**
     * {@link ScanCursor#nextRun}, which lists the batches of {@code scan_threads}, moves past the same
     * pages in the same order as {@link ScanCursor#next}, whatever the budget of each call, including
     * runs cut short by the budget and guests that end inside a chunk.
     */
    @Test
    void runsCoverTheSamePagesInTheSameOrderAsSinglePages() {
        int[] pageCounts = {70, 2, 0, 65, 300, 1};
        java.util.List<Long> expected = new java.util.ArrayList<>();
        ScanCursor single = new ScanCursor();
        single.start(pageCounts);
        for (int g; (g = single.next()) >= 0; ) {
            expected.add((long) g << 32 | single.page());
        }
        java.util.SplittableRandom random = new java.util.SplittableRandom(5);
        for (int trial = 0; trial < 50; trial++) {
            ScanCursor runs = new ScanCursor();
            runs.start(pageCounts);
            java.util.List<Long> seen = new java.util.ArrayList<>();
            for (int g; (g = runs.nextRun(1 + random.nextInt(trial % 2 == 0 ? 64 : 100))) >= 0; ) {
                assertTrue(runs.runLength() >= 1 && runs.runLength() <= ScanCursor.CHUNK_PAGES, "run of " + runs.runLength());
                for (int i = 0; i < runs.runLength(); i++) {
                    seen.add((long) g << 32 | (runs.page() + i));
                }
            }
            assertEquals(expected, seen, "trial " + trial);
        }
    }
}
