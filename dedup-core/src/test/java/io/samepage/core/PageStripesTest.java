package io.samepage.core;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.SplittableRandom;
import java.util.concurrent.locks.StampedLock;
import org.junit.jupiter.api.Test;

/** Which stripe guards which page ({@link PageStripes}), and what a range write takes. */
class PageStripesTest {

    /**
     * {@link ScanWorkers} gives each thread a contiguous part of a batch ({@link Scanner#FULL_PASS_BATCH_PAGES}
     * pages, {@value PageStripes#MAX_STRIPES} runs): two parts may share the stripes of the runs they meet
     * in (neighbours, and the first and last part where a batch that starts inside a run wraps round to
     * that run's stripe), and no other, or the threads pass the stripes' lock words between their cores
     * page after page.
     */
    @Test
    void partsOfABatchShareOnlyTheStripesWhereTheyMeet() {
        PageStripes stripes = new PageStripes(1 << 20);
        SplittableRandom random = new SplittableRandom(7);
        for (int threads : new int[] {2, 4}) {
            int part = Scanner.FULL_PASS_BATCH_PAGES / threads;
            for (int trial = 0; trial < 200; trial++) {
                int start = random.nextInt((1 << 20) - Scanner.FULL_PASS_BATCH_PAGES);
                java.util.List<java.util.Set<StampedLock>> taken = new java.util.ArrayList<>();
                for (int t = 0; t < threads; t++) {
                    java.util.Set<StampedLock> mine = java.util.Collections.newSetFromMap(new java.util.IdentityHashMap<>());
                    for (int page = start + t * part; page < start + (t + 1) * part; page++) {
                        mine.add(stripes.of(page));
                    }
                    taken.add(mine);
                }
                for (int a = 0; a < threads; a++) {
                    for (int b = a + 1; b < threads; b++) {
                        java.util.Set<StampedLock> both = java.util.Collections.newSetFromMap(new java.util.IdentityHashMap<>());
                        both.addAll(taken.get(a));
                        both.retainAll(taken.get(b));
                        assertTrue(both.size() <= 2, threads + " threads, batch at page " + start + ": parts " + a
                                + " and " + b + " share " + both.size() + " stripes");
                    }
                }
            }
        }
    }

    /**
     * A guest of up to {@value PageStripes#MAX_STRIPES} pages has a stripe per page, a larger one runs
     * of pages that cover all its stripes, up to {@value PageStripes#MAX_RUN_PAGES} pages a run.
     */
    @Test
    void runsGrowWithTheGuestUpToTheirLimit() {
        assertEquals(2, new PageStripes(1).count());
        assertEquals(1, new PageStripes(1).runPages());
        assertEquals(64, new PageStripes(50).count());
        assertEquals(1, new PageStripes(50).runPages());
        assertEquals(1, new PageStripes(PageStripes.MAX_STRIPES).runPages());
        assertEquals(4, new PageStripes(4 * PageStripes.MAX_STRIPES + 3).runPages());
        assertEquals(PageStripes.MAX_RUN_PAGES, new PageStripes(1 << 20).runPages());
        assertEquals(PageStripes.MAX_STRIPES, new PageStripes(1 << 20).count());
        PageStripes small = new PageStripes(50);
        for (int page = 1; page < 50; page++) {
            assertNotSame(small.of(page - 1), small.of(page), "neighbouring pages " + (page - 1) + " and " + page);
        }
    }

    /**
     * A range write must hold the stripe of every page in its ranges and no other stripe (a copy's two far
     * ranges leave the stripes between them free), and give them all back: the stripes are found again
     * from the pages, no stamp kept.
     */
    @Test
    void rangesLockTheStripeOfEveryPageInThemAndNoOther() {
        for (int pages : new int[] {1, 3, 64, 300, 4096}) {
            PageStripes stripes = new PageStripes(pages);
            SplittableRandom random = new SplittableRandom(pages);
            for (int trial = 0; trial < 500; trial++) {
                int first = random.nextInt(pages);
                int last = Math.min(pages - 1, first + random.nextInt(2 * PageStripes.MAX_STRIPES));
                boolean two = random.nextBoolean();
                int first2 = random.nextInt(pages);
                int last2 = two ? Math.min(pages - 1, first2 + random.nextInt(8)) : first2 - 1;
                String ranges = "[" + first + ", " + last + "]" + (two ? " and [" + first2 + ", " + last2 + "]" : "");
                stripes.lockRanges(first, last, first2, last2);
                java.util.Set<StampedLock> guarding = java.util.Collections.newSetFromMap(new java.util.IdentityHashMap<>());
                for (int page = 0; page < pages; page++) {
                    if (page >= first && page <= last || page >= first2 && page <= last2) {
                        assertTrue(stripes.of(page).isWriteLocked(), "page " + page + " of " + ranges);
                        guarding.add(stripes.of(page));
                    }
                }
                for (int page = 0; page < pages; page++) {
                    assertTrue(guarding.contains(stripes.of(page)) || !stripes.of(page).isWriteLocked(),
                            "page " + page + ", outside " + ranges + ", shares no stripe with them but its stripe is locked");
                }
                stripes.unlockRanges(first, last, first2, last2);
                for (int page = 0; page < pages; page++) {
                    assertFalse(stripes.of(page).isWriteLocked(), "page " + page + " after " + ranges);
                }
            }
        }
    }
}
