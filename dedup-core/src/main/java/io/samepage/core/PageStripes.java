package io.samepage.core;

import java.util.concurrent.locks.StampedLock;

/**
 * The lock stripes of one guest's pages: page {@code p} belongs to stripe {@code p % count}, a power
 * of two up to {@value #MAX_STRIPES}. A read holds its page's stripe shared; a write holds the stripes
 * of its whole range exclusively, taken in ascending order; the scanner holds the visited page's stripe
 * exclusively and takes a second one only with {@code tryWriteLock}.
 *
 * <p>Thread safe; the stripes are the locks.
 */
final class PageStripes {

    static final int MAX_STRIPES = 256;

    private final StampedLock[] stripes;
    private final int mask;

    PageStripes(int pageCount) {
        int count = Math.min(MAX_STRIPES, Integer.highestOneBit(Math.max(1, pageCount - 1)) << 1);
        stripes = new StampedLock[count];
        for (int i = 0; i < count; i++) {
            stripes[i] = new StampedLock();
        }
        mask = count - 1;
    }

    /** The stripe of {@code page}. */
    StampedLock of(int page) {
        return stripes[page & mask];
    }

    int count() {
        return stripes.length;
    }

    /** Write-locks the stripes of pages {@code first..last} in ascending stripe order; one stamp per stripe, 0 if not taken. */
    long[] lockRange(int first, int last) {
        long[] stamps = new long[stripes.length];
        if (last - first + 1 >= stripes.length) {
            for (int s = 0; s < stripes.length; s++) {
                stamps[s] = stripes[s].writeLock();
            }
            return stamps;
        }
        int from = first & mask;
        int to = last & mask;
        for (int s = 0; s < stripes.length; s++) {
            boolean inRange = from <= to ? s >= from && s <= to : s >= from || s <= to;
            if (inRange) {
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
