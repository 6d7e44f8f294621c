package io.samepage.core;

import java.util.concurrent.locks.StampedLock;

/**
 * The lock stripes of one guest's pages: a power of two of them, up to {@value #MAX_STRIPES}. Page
 * {@code p} belongs to stripe {@code (p + }{@value #BLOCK_STEP}{@code  * (p / count)) % count}: the
 * pages of one block of {@code count} pages take every stripe in turn, as {@code p % count} would, but
 * each block starts {@value #BLOCK_STEP} stripes further on. So two scanner threads that start whole
 * blocks apart ({@link ScanWorkers} splits a batch in equal parts) do not take the same stripes in
 * step: with {@code p % count} they did, and each waited for the other's page on every visit. A read
 * holds its page's stripe shared; a write holds the stripes of its whole range exclusively, taken in
 * ascending order; the scanner holds the visited page's stripe exclusively and takes a second one only
 * with {@code tryWriteLock}.
 *
 * <p>Thread safe; the stripes are the locks.
 */
final class PageStripes {

    static final int MAX_STRIPES = 256;
    /** Stripes each block of pages starts after the one before: odd, and far from 0 and from half. */
    static final int BLOCK_STEP = 73;

    private final StampedLock[] stripes;
    private final int mask;
    private final int shift;

    PageStripes(int pageCount) {
        int count = Math.min(MAX_STRIPES, Integer.highestOneBit(Math.max(1, pageCount - 1)) << 1);
        stripes = new StampedLock[count];
        for (int i = 0; i < count; i++) {
            stripes[i] = new StampedLock();
        }
        mask = count - 1;
        shift = Integer.numberOfTrailingZeros(count);
    }

    /** The stripe of {@code page}. */
    StampedLock of(int page) {
        return stripes[indexOf(page)];
    }

    private int indexOf(int page) {
        return (page + BLOCK_STEP * (page >>> shift)) & mask;
    }

    int count() {
        return stripes.length;
    }

    /** Write-locks the stripes of pages {@code first..last} in ascending stripe order; one stamp per stripe, 0 if not taken. */
    long[] lockRange(int first, int last) {
        long[] stamps = new long[stripes.length];
        boolean[] inRange = new boolean[stripes.length];
        if (last - first + 1 >= stripes.length) {
            java.util.Arrays.fill(inRange, true);
        } else {
            for (int page = first; page <= last; page++) {
                inRange[indexOf(page)] = true;
            }
        }
        for (int s = 0; s < stripes.length; s++) {
            if (inRange[s]) {
                stamps[s] = stripes[s].writeLock();
            }
        }
        return stamps;
    }

    void unlockRange(long[] stamps) {
        for (int s = stripes.length - 1; s >= 0; s--) {
            if (stamps[s] != 0) {
                stripes[s].unlockWrite(stamps[s]);
            }
        }
    }

    /** Takes and releases every stripe: returns once every operation that held one has finished. */
    void awaitAll() {
        for (StampedLock lock : stripes) {
            long stamp = lock.writeLock();
            lock.unlockWrite(stamp);
        }
    }
}
