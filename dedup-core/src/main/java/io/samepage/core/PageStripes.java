package io.samepage.core;

import java.util.concurrent.locks.StampedLock;

/**
 * The lock stripes of one guest's pages: a power of two of them, up to {@value #MAX_STRIPES}. Page
 * {@code p} belongs to stripe {@code (p / run) % count}: a run of neighbouring pages shares a stripe,
 * and the runs take the stripes in turn. A guest of {@value #MAX_STRIPES} pages or fewer has a stripe
 * per page; a larger one has runs of up to {@value #MAX_RUN_PAGES} pages (64 KiB), as many as spread
 * its pages over all the stripes. So the scanner threads of one batch, each visiting a contiguous part
 * of it ({@link ScanWorkers}), take different stripes, and a stripe's lock word stays in one core's
 * cache. With a stripe per page in turn, every part took every stripe, and a visit moved a lock's
 * cache line from the other core more often than not: the first half of a two-thread batch took
 * about 1.8x as long (docs/perf/engine.md#scan_threads). A range write takes a stripe per run instead
 * of one per page; the price is that writers of pages in the same run wait for each other, where
 * before pages {@code count} apart did. Small guests keep a stripe per page because a merge takes its
 * candidate's stripe only with {@code tryWriteLock}: where all of a guest's pages share a few stripes,
 * two scanner threads each holding one and trying the other's found each other busy scan after scan
 * (ModelBasedTest's colliding guests never settled).
 *
 * <p>A read holds its page's stripe shared; a write holds the stripes of its whole range exclusively,
 * taken in ascending order; the scanner holds the visited page's stripe exclusively and takes a second
 * one only with {@code tryWriteLock}.
 *
 * <p>Thread safe; the stripes are the locks.
 */
final class PageStripes {

    static final int MAX_STRIPES = 256;
    /** The most neighbouring pages that share a stripe: 64 KiB. */
    static final int MAX_RUN_PAGES = 16;

    private final StampedLock[] stripes;
    private final int mask;
    /** log2 of the pages in a run. */
    private final int runShift;

    PageStripes(int pageCount) {
        int count = Math.min(MAX_STRIPES, Integer.highestOneBit(Math.max(1, pageCount - 1)) << 1);
        runShift = Integer.numberOfTrailingZeros(Math.min(MAX_RUN_PAGES, Integer.highestOneBit(Math.max(1, pageCount / count))));
        stripes = new StampedLock[count];
        for (int i = 0; i < count; i++) {
            stripes[i] = new StampedLock();
        }
        mask = count - 1;
    }

    /** The stripe of {@code page}. */
    StampedLock of(int page) {
        return stripes[indexOf(page)];
    }

    private int indexOf(int page) {
        return (page >>> runShift) & mask;
    }

    int count() {
        return stripes.length;
    }

    /** Neighbouring pages that share a stripe. */
    int runPages() {
        return 1 << runShift;
    }

    /** Write-locks the stripes of pages {@code first..last} in ascending stripe order; {@link #unlockRange} releases them. */
    void lockRange(int first, int last) {
        lockRanges(first, last, 0, -1);
    }

    /**
     * Write-locks the stripes of pages {@code first..last} and {@code first2..last2} (a range whose last
     * page is below its first is empty) in ascending stripe order, each stripe once: a copy between two
     * far parts of a guest takes their stripes, not every stripe between them. {@link #unlockRanges} with
     * the same pages releases them. No stamps are kept (the stripes are found again from the pages), so
     * a write allocates nothing for its locks.
     */
    void lockRanges(int first, int last, int first2, int last2) {
        int highest = Math.max(highest(first, last), highest(first2, last2));
        for (int s = Math.min(lowest(first, last), lowest(first2, last2)); s <= highest; s++) {
            if (guards(s, first, last) || guards(s, first2, last2)) {
                stripes[s].writeLock();
            }
        }
    }

    /** Releases what {@link #lockRange lockRange(first, last)} took. */
    void unlockRange(int first, int last) {
        unlockRanges(first, last, 0, -1);
    }

    /**
     * Releases what {@link #lockRanges} took for the same pages, in descending stripe order.
     *
     * @throws IllegalMonitorStateException if one of those stripes is not write-locked
     */
    void unlockRanges(int first, int last, int first2, int last2) {
        int lowest = Math.min(lowest(first, last), lowest(first2, last2));
        for (int s = Math.max(highest(first, last), highest(first2, last2)); s >= lowest; s--) {
            if (guards(s, first, last) || guards(s, first2, last2)) {
                stripes[s].asWriteLock().unlock();
            }
        }
    }

    /** True if stripe {@code s} guards a page of {@code first..last} (none if {@code last < first}). */
    private boolean guards(int s, int first, int last) {
        if (last < first) {
            return false;
        }
        int firstRun = first >>> runShift;
        int runs = (last >>> runShift) - firstRun + 1;
        return runs >= stripes.length || ((s - firstRun) & mask) < runs;
    }

    /**
     * The lowest stripe that guards a page of {@code first..last}, {@link #count()} if none: the runs of a
     * range take consecutive stripes, from 0 again where they pass the last one. With {@link #highest}
     * it bounds the stripes a range write looks at, so a write of a few pages looks at a few stripes.
     */
    private int lowest(int first, int last) {
        if (last < first) {
            return stripes.length;
        }
        int firstRun = first >>> runShift;
        int runs = (last >>> runShift) - firstRun + 1;
        return (firstRun & mask) + runs > stripes.length ? 0 : firstRun & mask;
    }

    /** The highest stripe that guards a page of {@code first..last}, -1 if none. */
    private int highest(int first, int last) {
        if (last < first) {
            return -1;
        }
        int firstRun = first >>> runShift;
        int runs = (last >>> runShift) - firstRun + 1;
        return (firstRun & mask) + runs > stripes.length ? stripes.length - 1 : (firstRun & mask) + runs - 1;
    }

    /** Takes and releases every stripe: returns once every operation that held one has finished. */
    void awaitAll() {
        for (StampedLock lock : stripes) {
            long stamp = lock.writeLock();
            lock.unlockWrite(stamp);
        }
    }
}
