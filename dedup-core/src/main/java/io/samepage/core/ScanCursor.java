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
 * <p>Pages with nothing to visit: the cursor passes by, without a visit, the pages the visitor would
 * pass by ({@link PageTable#passedBy}: never written, or holes), so a batch's budget goes to the pages it
 * reads, as KSM's {@code pages_to_scan} counts only the pages it looks at (it walks the page tables and
 * skips absent pages). A large sparse guest (a WebAssembly instance that reserved 4 GiB and touched
 * 50 MiB) otherwise cost each full scan a budget unit per page it never wrote. A page passed by costs
 * the batch {@code 1/}{@value #PASSES_PER_VISIT} of a visit, and counts toward neither {@code
 * pages_scanned} nor the pages a batch visited; so a batch still ends after at most {@value
 * #PASSES_PER_VISIT} times its budget in pages over a guest that wrote nothing, and a full scan of
 * {@code w} written pages among {@code n} costs about {@code w + (n - w) / 64} budget units.
 *
 * <p>Why {@value #PASSES_PER_VISIT}: passing a page by reads its frame and state (8 bytes, in order)
 * without its lock; the cheapest visit (a clean or merged page) takes the page's lock and reads the same
 * entry, and a visit that hashes reads 4 KiB. So 64 pages passed by cost about what one cheap visit
 * costs, and a batch takes about as long as a batch of cheap visits of the same budget
 * (docs/perf/engine.md#sparse-guests). A larger ratio would let a batch over an empty guest run longer
 * than its budget says; a smaller one gives back what this removes. The table keeps no bit per page
 * that one word could test for 64 pages (whether a page is passed by depends on its frame and three
 * state bits), and keeping one would cost every write; so the look is per page. But it keeps a mark per
 * chunk ({@link PageTable#chunkAllToVisit}): a chunk the last look found without a page to pass by, none
 * turned into one since, is listed without a look. That look, on the scanner's thread alone while the
 * other scanner threads waited, was a fifth of a converged guest's full scan (docs/perf/engine.md).
 *
 * <p>A page that a guest writes after the cursor passed it by waits for the next full scan, as it
 * did when the scanner passed such a page by under its lock: each full scan looks at every page of
 * every guest in its round once, so a written page is visited by the first full scan that looks at it
 * after the write. With {@code scan_threads} above 1 a batch's pages are listed before its threads
 * visit them, so a page written between the listing and the visits waits too.
 *
 * <p>Thread safety: none; the scanner's thread owns it.
 */
final class ScanCursor {

    /** Pages of one guest visited before the cursor moves on to the next guest's same pages (2 MiB). */
    static final int CHUNK_PAGES = 512;

    /** Pages passed by for the cost of one visit: a page passed by costs {@code 1/64} of a visit. */
    static final int PASSES_PER_VISIT = 64;

    /** {@link #nextRun} found the round's end: no page of it is left to visit. */
    static final int ROUND_DONE = -1;

    /** {@link #nextRun} passed by pages for all it was allowed and found none to visit. */
    static final int ALLOWANCE_SPENT = -2;

    /** The round's guests' tables; null when every page is visited ({@link #start(int[])}). */
    private PageTable[] tables;
    /** The round's guests' pages; 0 for a guest {@linkplain #drop dropped}. */
    private int[] pageCounts = new int[0];
    /** The largest of {@link #pageCounts}; -1 once a drop may have lowered it, until {@link #nextRun} counts again. */
    private long roundPages;
    private long chunkStart;
    private int guest;
    private long page;
    private int current;
    private int runLength;
    private long passed;

    /** Starts a round over the guests of {@code tables}, in that order, passing by pages with nothing to visit. */
    void start(PageTable[] tables) {
        int[] counts = new int[tables.length];
        for (int g = 0; g < tables.length; g++) {
            counts[g] = tables[g].pages();
        }
        begin(tables, counts);
    }

    /** Starts a round over guests of {@code pageCounts} pages each, every page one to visit: for tests of the round's order and end. */
    void start(int[] pageCounts) {
        begin(null, pageCounts.clone());
    }

    /** Starts a round over {@code tables} (null: every page is one to visit), owning both arrays. */
    private void begin(PageTable[] tables, int[] pageCounts) {
        this.tables = tables;
        this.pageCounts = pageCounts;
        roundPages = -1;
        chunkStart = 0;
        guest = 0;
        page = 0;
    }

    /**
     * Moves on in the round for a batch that may still spend {@code allowance} (in {@code 1/}{@value
     * #PASSES_PER_VISIT} of a visit, at least 1): passes by the pages with nothing to visit, each costing
     * 1, then moves past a run of pages to visit, of one guest, never past the end of its chunk nor past
     * a page to pass by, and at most as many pages as the allowance left after the passing can start
     * (a visit costs {@value #PASSES_PER_VISIT}; the last one may overdraw it). {@link #passed()} tells
     * how many pages it passed by, whatever it returns.
     *
     * @return the index of the guest whose pages {@link #page()} to {@code page() + runLength() - 1} are
     *         to visit; {@link #ROUND_DONE} when the round is done; {@link #ALLOWANCE_SPENT} when it passed by {@code
     *         allowance} pages and found none to visit (the next call goes on from there)
     */
    int nextRun(long allowance) {
        passed = 0;
        if (roundPages < 0) {
            roundPages = 0;
            for (int count : pageCounts) {
                roundPages = Math.max(roundPages, count);
            }
        }
        while (chunkStart < roundPages) {
            if (guest >= pageCounts.length) {
                guest = 0;
                chunkStart += CHUNK_PAGES;
                page = chunkStart;
                continue;
            }
            long end = Math.min(chunkStart + CHUNK_PAGES, pageCounts[guest]);
            PageTable table = tables == null ? null : tables[guest];
            int chunk = (int) (chunkStart / CHUNK_PAGES);
            boolean allToVisit = table != null && page < end && table.chunkAllToVisit(chunk);
            boolean looking = table != null && page == chunkStart && page < end && !allToVisit;
            if (looking) {
                table.startChunkLook(chunk);        // before the look reads a page
            }
            if (page < end && table != null && !allToVisit) {
                int stop = (int) Math.min(end, page + allowance - passed);
                int first = table.skipPassedBy((int) page, stop);
                passed += first - page;
                page = first;
                if (first == stop && stop < end) {
                    return ALLOWANCE_SPENT;
                }
            }
            if (page >= end) {
                guest++;
                page = chunkStart;
                continue;
            }
            long visits = (allowance - passed + PASSES_PER_VISIT - 1) / PASSES_PER_VISIT;
            int runEnd = (int) Math.min(end, page + visits);
            current = (int) page;
            runLength = (table == null || allToVisit ? runEnd : table.skipToVisit(current + 1, runEnd)) - current;
            page += runLength;
            if (looking && current == chunkStart && page == end) {
                table.endChunkLook(chunk);          // the whole chunk, and not a page to pass by
            }
            return guest;
        }
        return ROUND_DONE;
    }

    /** The pages {@link #nextRun} moved past to visit. */
    int runLength() {
        return runLength;
    }

    /** The pages with nothing to visit that the last {@link #nextRun} passed by. */
    long passed() {
        return passed;
    }

    /** The first page of the run {@link #nextRun} moved past. */
    int page() {
        return current;
    }

    /**
     * Moves back to {@code pageIndex} of the current run's guest, inside that run: a visit of the run
     * threw, and the next batch goes on after the page whose visit threw; or to the run's start, a run
     * that {@link #nextRun} found only to learn that the round had not ended.
     */
    void resumeAt(int pageIndex) {
        page = pageIndex;
    }

    /**
     * Takes guest {@code g} out of the round (it was destroyed): the cursor passes it by from now on
     * without reading its table, and no longer holds the table. The round ends sooner if it was the
     * largest guest.
     */
    void drop(int g) {
        if (pageCounts[g] == roundPages) {
            roundPages = -1;
        }
        pageCounts[g] = 0;
        if (tables != null) {
            tables[g] = null;
        }
    }

    /** Moves the round to the chunk holding {@code pageIndex}, first guest: for tests of the round's end. */
    void seekChunkOf(long pageIndex) {
        chunkStart = pageIndex / CHUNK_PAGES * CHUNK_PAGES;
        guest = 0;
        page = chunkStart;
    }
}
