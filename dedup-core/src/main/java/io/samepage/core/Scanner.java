package io.samepage.core;

import io.samepage.hashing.PageHasher;
import java.lang.management.ManagementFactory;
import java.lang.management.ThreadMXBean;
import java.util.Objects;
import java.util.concurrent.locks.ReentrantLock;
import org.agrona.concurrent.Agent;
import org.agrona.concurrent.AgentTerminationException;

/**
 * KSM's scanner as an Agrona {@link Agent}: each duty cycle visits {@code pages_to_scan} guest pages
 * ({@value #CHUNK_PAGES} of each guest in turn), then waits {@code sleep_millisecs}; pages with nothing to visit
 * (never written, holes) are passed by at a 64th of a visit each ({@link ScanCursor}), as KSM's {@code
 * pages_to_scan} counts only the pages it looks at. Run it on an {@code AgentRunner}, or step it in the
 * caller's thread with {@link #scanBatch}, {@link #scanFullPass} and {@link #scanUntilStable} (embedding
 * programs, tests, the CLI, the benchmarks).
 *
 * <p>Each visit is a {@link PageVisitor}'s (KSM's rules, the indexes, merges and their failure
 * atomicity); this class owns the duty cycle, the batches, the full scans ({@link ScanCursor}), the
 * scan-time advisor ({@link ScanTimeAdvisor}) and {@code run=2}.
 *
 * <p>Each batch is visited in {@link ScanWorkers}' two halves (the pages, then their index lookups, a
 * shard at a time), on this thread alone or shared with {@code scan_threads - 1} workers; the batch,
 * the full scans and the counters are the same for any number of threads.
 *
 * <p>Thread safety: one thread drives the scanner at a time; {@link DedupEngine#close} waits for the
 * batch in progress, after which every call fails (an {@code AgentRunner} stops). It takes each visited
 * page's stripe exclusively (a merged page's only optimistically, to read that it is merged), and a candidate's stripe only with {@code tryWriteLock} (a busy candidate
 * waits for the next visit), so it never waits while holding a page lock: guest writers cannot
 * deadlock with it. Counter getters are safe from any thread.
 */
public final class Scanner implements Agent {

    /**
     * Frames faulted in at the end of each batch to refill the pool's warm list ({@link
     * FramePool#replenishWarm}), so copy-on-write breaks between two duty cycles find frames already
     * resident. What a refill costs is in docs/perf/engine.md.
     */
    static final int REPLENISH_PER_BATCH = 1024;

    /** Pages of one guest visited before the next guest's same pages ({@link ScanCursor}). */
    static final int CHUNK_PAGES = ScanCursor.CHUNK_PAGES;

    /** Guest pages per batch of {@link #scanFullPass} and {@link #scanUntilStable(int)} on one thread. */
    public static final int FULL_PASS_BATCH_PAGES = 4096;

    /** Most pages a thread visits per part of a bigger batch ({@link #runListed}): two full-scan batches' worth. */
    static final int PART_PAGES = 2 * FULL_PASS_BATCH_PAGES;

    /**
     * Most pages a thread visits per part after a quiet part ({@link ScanWorkers#lastRunQuiet}) on several
     * threads, and per batch of {@link #scanFullPass} there: where pages neither change nor merge, as in a
     * steady scan, a thread visits a page in 8 to 10 ns, and in batches of {@value #FULL_PASS_BATCH_PAGES}
     * pages a thread a batch's two waits for the slowest thread and a worker's wake-up took a sixth to a
     * fifth of its time (docs/perf/engine.md#scan_threads). One thread waits for none, and keeps its parts.
     */
    static final int QUIET_PART_PAGES = 16 * FULL_PASS_BATCH_PAGES;

    /**
     * The bound on {@link #scanUntilStable}'s full scans that Samepage's own callers use (the CLI, the
     * density suite, the benchmarks): far more than static guests need, so reaching it means a guest's
     * memory keeps changing.
     */
    public static final int DEFAULT_MAX_FULL_SCANS_TO_SETTLE = 64;

    /** Full scans in a row that must change nothing before {@link #scanUntilStable} returns. */
    private static final int QUIET_FULL_SCANS = 2;

    private final DedupEngine engine;
    private final FramePool pool;
    private final ScanKnobs knobs;
    private final ThreadMXBean threads = ManagementFactory.getThreadMXBean();
    private final FreedFrames freed;
    /** Held for every batch and unmerge; {@link #close} takes it to wait for the one in progress. */
    private final ReentrantLock batchLock = new ReentrantLock();
    private volatile boolean closed;

    /** The current full scan's guests, in order; a destroyed one's slot is nulled ({@link #dropDestroyed}). */
    private Guest[] round = new Guest[0];
    private final ScanCursor cursor = new ScanCursor();
    private boolean roundOpen;
    /** Where guests' destroys are counted ({@link PageIds#destroys}), and the count this round has seen. */
    private final PageIds pageIds;
    private long destroysSeen;
    /** Pages the last batch passed by without a visit. */
    private long batchPassed;
    private long nextBatchNanos;
    private long scanStartNanos = System.nanoTime();
    private long scanStartCpuNanos = -1;

    private volatile long fullScans;
    private final PageVisitor visitor;
    /** Runs each batch's visits: on this thread, and on the other threads when {@code scan_threads} is above 1. */
    private final ScanWorkers workers;

    Scanner(DedupEngine engine, PageHasher hasher, PageIds pageIds) {
        this.engine = engine;
        this.pageIds = pageIds;
        this.pool = engine.pool();
        this.knobs = engine.knobs();
        this.freed = new FreedFrames(pool);
        this.visitor = new PageVisitor(engine, hasher, freed);
        this.workers = new ScanWorkers(engine, hasher);
    }

    @Override
    public String roleName() {
        return "samepage-scanner";
    }

    /**
     * One duty cycle: obeys {@code run} (0 idles, 2 unmerges everything then sets {@code run=0}), and
     * once {@code sleep_millisecs} have passed since the last batch scans one batch.
     *
     * @return the batch's work in visits (pages visited, and a 64th of a visit per page passed by, rounded
     *         up), or 1 for an unmerge; 0, when there was nothing to do, lets the idle strategy idle
     */
    @Override
    public int doWork() {
        if (closed) {
            throw new AgentTerminationException("the engine is closed");
        }
        try {
            return doWorkOpen();
        } catch (DedupException e) {
            // The engine closed between the check above and this duty cycle's batch lock: the same
            // stop, not an error for the runner's error handler.
            if (closed && e.kind() == DedupException.Kind.DESTROYED) {
                throw new AgentTerminationException("the engine is closed");
            }
            throw e;
        }
    }

    private int doWorkOpen() {
        int run = knobs.run();
        if (run == ScanKnobs.RUN_UNMERGE) {
            lockBatch();
            try {
                UnmergeAll.run(engine);
            } finally {
                knobs.unmergeDone();        // done or refused, run goes back to 0: KSM's rule on ENOMEM
                batchLock.unlock();
            }
            return 1;
        }
        if (run == ScanKnobs.RUN_STOP || System.nanoTime() - nextBatchNanos < 0) {
            return 0;
        }
        int visited = scanBatch(knobs.pagesToScan());
        nextBatchNanos = System.nanoTime() + knobs.sleepMillis() * 1_000_000L;
        // Passing pages by is work too: reported as none, the runner idled after each batch over a sparse
        // guest, which with sleep_millisecs below its idle period (0: back to back) slowed the full scan.
        long passedVisits = (batchPassed + ScanCursor.PASSES_PER_VISIT - 1) / ScanCursor.PASSES_PER_VISIT;
        return (int) Math.min(Integer.MAX_VALUE, visited + passedVisits);
    }

    /** Bytes of the batches' lists ({@link ScanWorkers#metadataBytes}), which grow with the first batches. */
    long metadataBytes() {
        return workers.metadataBytes();
    }

    /** Waits for the batch in progress, then refuses every later one. Called by {@link DedupEngine#close}. */
    void close() {
        closed = true;
        batchLock.lock();
        try {
            workers.close();
        } finally {
            batchLock.unlock();
        }
    }

    /**
     * Runs {@code action} in the caller's thread if no batch is in progress (and the scanner is open),
     * holding the batch lock, so that no scanner thread reads or changes an index meanwhile.
     */
    void runIfIdle(Runnable action) {
        if (!batchLock.tryLock()) {
            return;
        }
        try {
            if (!closed) {
                action.run();
            }
        } finally {
            batchLock.unlock();
        }
    }

    private void lockBatch() {
        batchLock.lock();
        if (closed) {
            batchLock.unlock();
            throw new DedupException(DedupException.Kind.DESTROYED, "the engine is closed; its scanner cannot run");
        }
    }

    /**
     * Visits up to {@code budget} guest pages from where the last batch stopped. A batch ends early
     * where a full scan ends; the next batch starts the next full scan. Pages with nothing to visit
     * (never written, holes) are passed by without a visit at {@code 1/}{@value ScanCursor#PASSES_PER_VISIT}
     * of a visit each ({@link ScanCursor}): they count toward neither the pages visited nor {@code
     * pages_scanned}, so a batch over a guest that wrote nothing passes by up to {@value
     * ScanCursor#PASSES_PER_VISIT} times {@code budget} pages and visits none. The frames its merges free
     * go back to the pool together ({@link FreedFrames}) before it returns, and then it refills the pool's
     * warm list, so that copy-on-write breaks find frames already faulted in. A batch of 0 pages does
     * only that.
     *
     * @return pages visited (0 when there are no guests, or when the batch only passed pages by)
     * @throws RuntimeException or {@link Error}: what a visit threw, once the batch is done with; a full
     *         scan the batch reached the end of has ended, as if no visit had thrown
     */
    public int scanBatch(int budget) {
        lockBatch();
        try {
            return scanPages(budget);
        } finally {
            try {
                freed.flush();
                workers.flush();
                pool.replenishWarm(REPLENISH_PER_BATCH - workers.takeReplenished());   // what the threads left
            } finally {
                try {
                    engine.releaseUnnamedIds();     // guests destroyed during the batch, now that no filing is in flight
                } finally {
                    batchLock.unlock();
                }
            }
        }
    }

    /**
     * The batch's loop: the cursor passes by the pages with nothing to visit and hands out runs of one
     * guest's pages to visit ({@link ScanCursor#nextRun}); the runs are listed in that order, {@link
     * ScanWorkers} visits them on {@code scan_threads} threads (one: this thread alone), and only then
     * does the full scan end if the batch reached its end. The budget is kept in {@code 1/}{@value
     * ScanCursor#PASSES_PER_VISIT} of a visit.
     *
     * <p>A batch that reached the full scan's end ends it even if a visit threw, and then throws the first
     * throwable, once every listed page was visited ({@link #runListed}). Left open, the scan was ended by the next
     * batch, which visited nothing: {@code full_scans}, the advisor's scan time and {@link
     * #scanUntilStable}'s count of quiet scans were a batch late.
     */
    private int scanPages(int budget) {
        if (scanStartCpuNanos < 0) {
            scanStartCpuNanos = cpuNanos();
        }
        int threads = knobs.scanThreads();
        if (threads == 1) {
            workers.stopIdle();             // scan_threads went back to 1: its workers end
        }
        long left = (long) budget * ScanCursor.PASSES_PER_VISIT;
        int visited = 0;
        batchPassed = 0;
        boolean scanEnded = false;
        int listed = 0;
        Throwable failed = null;
        if (roundOpen && pageIds.destroys() != destroysSeen) {
            dropDestroyed();
        }
        while (left > 0) {
            if (!roundOpen) {
                if (!startNextRound()) {
                    break;
                }
                continue;
            }
            int g = cursor.nextRun(left);
            left -= cursor.passed();
            batchPassed += cursor.passed();
            if (g < 0) {
                scanEnded = g != ScanCursor.ALLOWANCE_SPENT;
                break;
            }
            Guest guest = round[g];
            if (guest.isDestroyed()) {
                round[g] = null;
                cursor.drop(g);
                continue;
            }
            int length = cursor.runLength();
            // A part runs when the next run would take it past its size, so the batch's last part is never empty.
            int partPages = (threads > 1 && workers.lastRunQuiet() ? QUIET_PART_PAGES : PART_PAGES) * threads;
            if (listed > 0 && listed + length > partPages) {
                failed = runListed(threads, 0, failed);
                listed = 0;
            }
            visited += length;
            left -= (long) length * ScanCursor.PASSES_PER_VISIT;
            workers.add(guest, cursor.page(), length);
            listed += length;
        }
        try {
            failed = runListed(threads, REPLENISH_PER_BATCH, failed);
            if (failed != null) {
                org.agrona.LangUtil.rethrowUnchecked(failed);      // the first, as it is, checked or not
            }
        } finally {
            if (scanEnded) {
                finishFullScan();
            }
        }
        return visited;
    }

    /**
     * Visits the pages listed so far ({@link ScanWorkers#run}) and returns the batch's first throwable:
     * {@code failed} if a part before threw, else what this part threw, if anything. A batch is run in
     * parts of at most {@value #PART_PAGES} pages a thread ({@value #QUIET_PART_PAGES} after a quiet part
     * on several threads), so the lists a part grows stay that size whatever {@code pages_to_scan} asks
     * for, and a thread's lists stop at {@link DeferredMerges#CAPACITY} pages whatever the part.
     */
    private Throwable runListed(int threads, int replenish, Throwable failed) {
        try {
            workers.run(visitor, threads, replenish);
        } catch (Throwable e) {     // a checked one too, from a hasher that throws it undeclared
            return failed != null ? failed : e;
        }
        return failed;
    }

    /**
     * Scans until the current full scan completes (a whole one if called at a boundary), in batches of
     * {@value #FULL_PASS_BATCH_PAGES} pages on one thread and of {@value #QUIET_PART_PAGES} pages per
     * scanner thread on several ({@code scan_threads}), so that a steady scan's parts are that big; where
     * pages change or merge, the batch is visited in parts of {@value #PART_PAGES} pages a thread.
     */
    public void scanFullPass() {
        long target = fullScans + 1;
        while (fullScans < target) {
            if (scanBatch(fullPassBatchPages()) == 0 && engine.guests().isEmpty()) {
                return;
            }
        }
    }

    /** Pages per batch of a full pass on {@code scan_threads} threads ({@link #scanFullPass}). */
    private int fullPassBatchPages() {
        int threads = knobs.scanThreads();
        return threads == 1 ? FULL_PASS_BATCH_PAGES : QUIET_PART_PAGES * threads;
    }

    /**
     * Scans in the caller's thread until two full scans in a row change nothing; {@link
     * #scanUntilStable(int, int, Runnable)} with {@link #scanFullPass}'s batches for the threads it has
     * when called, and nothing to do between them.
     *
     * @return the full scans this call completed
     */
    public int scanUntilStable(int maxFullScans) {
        return scanUntilStable(maxFullScans, fullPassBatchPages(), () -> { });
    }

    /**
     * Steps the scanner in the caller's thread, {@code batchPages} guest pages a batch ({@link #scanBatch}),
     * until two full scans in a row change nothing: after each, the same {@code pages_shared}, {@code
     * pages_sharing}, {@code pages_unshared}, {@code pages_volatile} and {@code ksm_zero_pages} as after the
     * one before, and no merge ({@link #merges()}); with smart_scan, the sum of {@code pages_unshared} and
     * {@code pages_volatile}, since skipped pages move between the two while nothing changes. A full scan in progress when it is called counts as the
     * first. With no live guest there is nothing to scan, and it returns at once.
     *
     * <p>Why two: KSM's volatility rule merges a page only on a visit that finds its hash unchanged since
     * the last one, so the first full scan over new content only records hashes and merges nothing, and a
     * page can wait one more scan for a twin whose page lock was busy. Two quiet scans in a row mean every
     * page had its chance. Static guests settle in four or five full scans; {@code maxFullScans} bounds a
     * guest whose memory keeps changing. This is the one definition of "merged until stable" in Samepage.
     *
     * @param maxFullScans the most full scans to run, at least 2
     * @param batchPages   guest pages per batch, at least 1
     * @param afterBatch   run after every batch, in this thread: a caller samples its counters here
     * @return the full scans this call completed
     * @throws DedupException {@link DedupException.Kind#NOT_SETTLED} if a full scan still changed something
     *                        after {@code maxFullScans} (the merges done stand); {@link
     *                        DedupException.Kind#INVALID_ARGUMENT} for a bound or batch out of range; and
     *                        whatever a batch throws ({@link #scanBatch})
     */
    public int scanUntilStable(int maxFullScans, int batchPages, Runnable afterBatch) {
        if (maxFullScans < QUIET_FULL_SCANS) {
            throw new DedupException(DedupException.Kind.INVALID_ARGUMENT, "maxFullScans " + maxFullScans
                    + ": must be at least " + QUIET_FULL_SCANS + ", the quiet full scans that show the counters settled");
        }
        if (batchPages < 1) {
            throw new DedupException(DedupException.Kind.INVALID_ARGUMENT, "batchPages " + batchPages
                    + ": a batch visits at least one page");
        }
        Objects.requireNonNull(afterBatch, "afterBatch");
        long start = fullScans;
        ScanOutcome last = ScanOutcome.of(engine.counters(), knobs.smartScan(), merges());
        int quiet = 0;
        while (quiet < QUIET_FULL_SCANS) {
            long before = fullScans;
            int visited = scanBatch(batchPages);
            afterBatch.run();
            if (fullScans == before) {
                if (visited == 0 && !roundOpen) {
                    break;                  // no live guest: nothing to scan (a batch that passed pages by keeps it open)
                }
                continue;
            }
            ScanOutcome now = ScanOutcome.of(engine.counters(), knobs.smartScan(), merges());
            quiet = now.equals(last) ? quiet + 1 : 0;
            last = now;
            if (quiet < QUIET_FULL_SCANS && fullScans - start >= maxFullScans) {
                throw new DedupException(DedupException.Kind.NOT_SETTLED, "the counters still changed after "
                        + maxFullScans + " full scans; is a guest's memory changing while it is scanned?");
            }
        }
        return (int) (fullScans - start);
    }

    public long fullScans() {
        return fullScans;
    }

    public long pagesScanned() {
        return visitor.pagesScanned() + workers.sum(PageVisitor::pagesScanned);
    }

    public long pagesSkipped() {
        return visitor.pagesSkipped() + workers.sum(PageVisitor::pagesSkipped);
    }

    /**
     * Pages whose bytes the scanner read to hash them, since the engine started: the work a dirty page
     * costs (a clean page keeps its last hash).
     */
    public long pagesHashed() {
        return visitor.pagesHashed() + workers.sum(PageVisitor::pagesHashed);
    }

    /** Merges done since the engine started, zero-page merges included: a change detector for callers. */
    public long merges() {
        return visitor.merges() + workers.sum(PageVisitor::merges);
    }

    /**
     * Drops the guests destroyed since the round started from it, and from its cursor: they would stay
     * reachable, page tables and all, until the next full scan starts, since the cursor passes by every
     * page of a destroyed guest (all read as never written) and so never hands one out to be found
     * destroyed. Runs at a batch's start only when a guest was destroyed since the last look: one
     * volatile read a batch otherwise.
     */
    private void dropDestroyed() {
        destroysSeen = pageIds.destroys();
        for (int g = 0; g < round.length; g++) {
            if (round[g] != null && round[g].isDestroyed()) {
                round[g] = null;
                cursor.drop(g);
            }
        }
    }

    /**
     * Starts a full scan. The unstable indexes keep their pages from the last one, unless they are to be
     * emptied ({@link UnstableFiling#indexesToEmpty}).
     */
    private boolean startNextRound() {
        if (UnstableFiling.indexesToEmpty(engine, pageIds)) {
            engine.clearUnstableIndexes();
        }
        destroysSeen = pageIds.destroys();      // before the guests: one destroyed after is seen at the next batch
        round = engine.liveGuests();
        for (Guest guest : round) {
            guest.collectWritten();
        }
        PageTable[] tables = new PageTable[round.length];
        for (int g = 0; g < round.length; g++) {
            tables[g] = round[g].table();
        }
        cursor.start(tables);
        roundOpen = round.length > 0;
        return roundOpen;
    }

    /** Ends a full scan; a batch stops here, so callers see the counters of a completed scan. */
    private void finishFullScan() {
        roundOpen = false;
        fullScans++;
        long now = System.nanoTime();
        long cpu = cpuNanos();
        if (knobs.advisorMode() == AdvisorMode.SCAN_TIME) {
            knobs.advisePagesToScan(ScanTimeAdvisor.advisedPagesToScan(knobs.pagesToScan(), now - scanStartNanos,
                    cpu - scanStartCpuNanos, knobs.advisorTargetScanTimeSeconds(), knobs.advisorMaxCpu()));
        }
        scanStartNanos = now;
        scanStartCpuNanos = cpu;
    }

    /** CPU time of the threads that scan: this one and the workers of {@code scan_threads}. */
    private long cpuNanos() {
        return (threads.isCurrentThreadCpuTimeSupported() ? threads.getCurrentThreadCpuTime() : 0) + workers.cpuNanos();
    }
}
