package io.samepage.core;

import java.util.Arrays;

/**
 * A batch's pages to visit, as the {@link Scanner} lists them for {@link ScanWorkers}: runs of
 * consecutive pages of one guest, at most {@value ScanWorkers#CLAIM} pages each, the unit a scanner
 * thread claims. A run rather than a page an entry: listing is the part of a batch no other thread
 * shares.
 *
 * <p>Thread safety: filled by the scanner's thread, read by the scanner threads once a batch publishes
 * it, emptied by the scanner's thread once they are done. Allocates only when it grows.
 */
final class ListedRuns {

    private Guest[] guests = new Guest[0];
    private int[] firstPages = new int[0];
    private int[] lengths = new int[0];
    private int count;
    private int pages;

    /** Lists pages {@code first} to {@code first + length - 1} of {@code guest}: at most {@value ScanWorkers#CLAIM}. */
    void add(Guest guest, int first, int length) {
        if (length > ScanWorkers.CLAIM) {
            throw new IllegalArgumentException("a run of " + length + " pages; at most " + ScanWorkers.CLAIM);
        }
        if (count == firstPages.length) {
            int grown = Math.max(64, 2 * count);
            // All three made, then assigned: grown one by one, an OutOfMemoryError left them of different lengths.
            Guest[] grownGuests = Arrays.copyOf(guests, grown);
            int[] grownFirstPages = Arrays.copyOf(firstPages, grown);
            int[] grownLengths = Arrays.copyOf(lengths, grown);
            guests = grownGuests;
            firstPages = grownFirstPages;
            lengths = grownLengths;
        }
        guests[count] = guest;
        firstPages[count] = first;
        lengths[count] = length;
        count++;
        pages += length;
    }

    /** Runs listed. */
    int count() {
        return count;
    }

    /** Pages in the runs listed. */
    int pages() {
        return pages;
    }

    Guest guest(int run) {
        return guests[run];
    }

    int firstPage(int run) {
        return firstPages[run];
    }

    /** One past the last page of {@code run}. */
    int endPage(int run) {
        return firstPages[run] + lengths[run];
    }

    /** Empties the list, dropping its guests. */
    void clear() {
        Arrays.fill(guests, 0, count, null);
        count = 0;
        pages = 0;
    }

    /** Bytes of the list's arrays ({@link MetadataSizes}). */
    long metadataBytes() {
        return MetadataSizes.array(guests.length, MetadataSizes.REFERENCE)
                + 2 * MetadataSizes.array(firstPages.length, Integer.BYTES);
    }
}
