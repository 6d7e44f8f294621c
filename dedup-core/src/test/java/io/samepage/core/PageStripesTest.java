package io.samepage.core;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/** Which stripe guards which page ({@link PageStripes}), and what a range write takes. */
class PageStripesTest {

    /**
     * {@link ScanWorkers} gives threads equal parts of a batch, which start whole blocks of 256 pages
     * apart: those pages must not share a stripe, or the threads take the same locks in step.
     */
    @Test
    void pagesWholeBlocksApartHaveDifferentStripes() {
        PageStripes stripes = new PageStripes(1 << 20);
        for (int page = 0; page < 4 * PageStripes.MAX_STRIPES; page++) {
            for (int blocks = 1; blocks <= 3; blocks++) {
                assertNotSame(stripes.of(page), stripes.of(page + blocks * PageStripes.MAX_STRIPES),
                        "pages " + page + " and " + blocks + " blocks further");
            }
        }
    }

    /** A range write must hold the stripe of every page in its range, and give them all back. */
    @Test
    void aRangeLocksTheStripeOfEveryPageInIt() {
        for (int pages : new int[] {1, 3, 64, 300, 4096}) {
            PageStripes stripes = new PageStripes(pages);
            SplittableRandom random = new SplittableRandom(pages);
            for (int trial = 0; trial < 500; trial++) {
                int first = random.nextInt(pages);
                int last = Math.min(pages - 1, first + random.nextInt(2 * PageStripes.MAX_STRIPES));
                long[] stamps = stripes.lockRange(first, last);
                for (int page = first; page <= last; page++) {
                    assertTrue(stripes.of(page).isWriteLocked(), "page " + page + " of [" + first + ", " + last + "]");
                }
                stripes.unlockRange(stamps);
                for (int page = 0; page < pages; page++) {
                    assertFalse(stripes.of(page).isWriteLocked(), "page " + page + " after the range");
                }
            }
        }
    }
}
