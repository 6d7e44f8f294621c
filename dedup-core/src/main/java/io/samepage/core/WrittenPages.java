package io.samepage.core;

import java.util.Arrays;
import java.util.concurrent.locks.StampedLock;

/**
 * Writes made behind the engine's back, into a mapped guest's writable pages (by a KVM guest): they do
 * not pass through {@link Guest}, so they set no dirty bit, and a page the scanner believes clean would
 * keep a stale hash. At every full scan the scanner asks the guest's {@link PageMapping} which pages
 * were written ({@link PageMapping#pagesWritten}, a KVM dirty log) and marks exactly those; a mapping
 * that cannot tell gets every page marked, which is KSM's rule of rehashing every page at every visit.
 * A marked page is rehashed at its next visit, so it is volatile if it changed and merges if it did not.
 *
 * <p>Thread safety: {@link #mark} and {@link #markAll} are safe from any thread (each page is marked
 * under its stripe); {@link #collect} belongs to the scanner's thread (single writer of the buffer).
 */
final class WrittenPages {

    private final Guest guest;
    private final PageMapping mapping;
    private final long[] bitmap;

    WrittenPages(Guest guest, PageMapping mapping) {
        this.guest = guest;
        this.mapping = mapping;
        this.bitmap = new long[(guest.pageCount() + 63) >>> 6];
    }

    /**
     * Asks the mapping and marks what it names, or every page if it cannot tell: it says so, or it
     * throws (a dirty log that could not be read). Allocates nothing.
     */
    void collect() {
        Arrays.fill(bitmap, 0);
        boolean told;
        try {
            told = mapping.pagesWritten(bitmap);
        } catch (RuntimeException cannotTell) {
            told = false;       // some pages may be named already, the rest not: rehash them all
        }
        if (told) {
            mark(guest, bitmap);
        } else {
            markAll(guest);
        }
    }

    static void mark(Guest guest, long[] bitmap) {
        int pages = guest.pageCount();
        int words = Math.min(bitmap.length, (pages + 63) >>> 6);
        for (int w = 0; w < words; w++) {
            for (long bits = bitmap[w]; bits != 0; bits &= bits - 1) {
                int page = (w << 6) + Long.numberOfTrailingZeros(bits);
                if (page >= pages) {
                    break;
                }
                StampedLock lock = guest.stripeOf(page);
                long stamp = lock.writeLock();
                try {
                    guest.markWrittenLocked(page);
                } finally {
                    lock.unlockWrite(stamp);
                }
            }
        }
    }

    static void markAll(Guest guest) {
        for (int page = 0; page < guest.pageCount(); page++) {
            StampedLock lock = guest.stripeOf(page);
            long stamp = lock.writeLock();
            try {
                guest.markWrittenLocked(page);
            } finally {
                lock.unlockWrite(stamp);
            }
        }
    }
}
