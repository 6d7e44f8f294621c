package io.samepage.core;

/**
 * Where a full scan is: it visits chunk 0 ({@value #CHUNK_PAGES} pages) of every guest of the round,
 * then chunk 1 of every guest, and so on, to the end of the largest guest. Positions are {@code long},
 * so a guest of up to 2^31 - 9 pages (the largest a page table holds) ends its round instead of wrapping.
 *
 * <p>Why chunks: where guests hold the same content at the same addresses, as guests booted from one
 * image do, the frame they all compare against is still in the CPU's cache when the next guest's page
 * is compared with it (KSM visits one process after another).
 *
 * <p>Why 2 MiB: a guest whose frames were handed out in the order it wrote its pages holds a chunk in
 * one 2 MiB block of the pool ({@link AnonymousFrames}), so the frames a chunk's merges free (its zero
 * pages, its pages equal to another guest's) can fill a whole block, which the kernel takes back at a
 * third of the cost per page of a partly freed one (docs/perf/engine.md#discards). The price: the frame
 * compared against is up to 2 MiB back per guest, in the second or third level cache rather than the
 * second (one-thread merge passes of twin pages measured about 8% slower).
 *
 * <p>Thread safety: none; the scanner's thread owns it.
 */
final class ScanCursor {

    /** Pages of one guest visited before the cursor moves on to the next guest's same pages (2 MiB). */
    static final int CHUNK_PAGES = 512;

    private int[] pageCounts = new int[0];
    private long roundPages;
    private long chunkStart;
    private int guest;
    private long page;
    private int current;
    private int runLength;

    /** Starts a round over guests of {@code pageCounts} pages each, in that order. */
    void start(int[] pageCounts) {
        this.pageCounts = pageCounts;
        long largest = 0;
        for (int count : pageCounts) {
            largest = Math.max(largest, count);
        }
        roundPages = largest;
        chunkStart = 0;
        guest = 0;
        page = 0;
    }

    /**
     * Moves to the next page of the round.
     *
     * @return the index of the guest whose page {@link #page()} is next, or -1 when the round is done
     */
    int next() {
        return nextRun(1);
    }

    /**
     * Moves past up to {@code maxPages} pages of one guest at once, never past the end of its chunk:
     * the same pages, in the same order, as that many calls of {@link #next()}.
     *
     * @return the index of the guest whose pages {@link #page()} to {@code page() + runLength() - 1} are
     *         next, or -1 when the round is done
     */
    int nextRun(int maxPages) {
        while (chunkStart < roundPages) {
            if (guest >= pageCounts.length) {
                guest = 0;
                chunkStart += CHUNK_PAGES;
                page = chunkStart;
                continue;
            }
            long end = Math.min(chunkStart + CHUNK_PAGES, pageCounts[guest]);
            if (page >= end) {
                guest++;
                page = chunkStart;
                continue;
            }
            current = (int) page;
            runLength = (int) Math.min(end - page, maxPages);
            page += runLength;
            return guest;
        }
        return -1;
    }

    /** The pages {@link #nextRun} moved past. */
    int runLength() {
        return runLength;
    }

    /** The page {@link #next()} moved to (the first of the run {@link #nextRun} moved past). */
    int page() {
        return current;
    }

    /** Passes over the rest of the current guest's chunk (it was destroyed). */
    void skipGuest() {
        guest++;
        page = chunkStart;
    }

    /** Moves the round to the chunk holding {@code pageIndex}, first guest: for tests of the round's end. */
    void seekChunkOf(long pageIndex) {
        chunkStart = pageIndex / CHUNK_PAGES * CHUNK_PAGES;
        guest = 0;
        page = chunkStart;
    }
}
