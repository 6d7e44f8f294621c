package io.samepage.core;

import io.samepage.hashing.PageHasher;
import java.lang.management.ManagementFactory;
import java.lang.management.ThreadMXBean;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ThreadFactory;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import java.util.concurrent.locks.LockSupport;
import org.agrona.LangUtil;

/**
 * How the {@link Scanner}'s batches are visited, on the scanner's thread alone ({@code scan_threads} 1,
 * the default) or shared with {@code scan_threads - 1} workers ({@link ScanKnobs#scanThreads}). The
 * scanner lists the runs of a batch's pages to visit in its usual order, the pages with nothing to visit
 * passed by ({@link ScanCursor}, {@link #add}); {@link #run} then runs the batch in two halves. First
 * half: each thread takes a contiguous part of the list, a run at a time (up to {@value #CLAIM} pages of
 * one guest), then helps with the others' parts; it visits each page (the dirty bit, the hash, KSM's
 * volatility rule, zero pages, merged pages) and lists a page that needs the indexes under its key's
 * unstable shard ({@link DeferredMerges}, up to its capacity, past which it merges at once); alone, it
 * merges a page it read at once, while that is in its cache ({@link PageVisitor#deferReadPages}), and
 * lists only the others. Second half, once every thread is through the first: each thread looks up the
 * pages of the shards it owns, a claimed chunk of one shard at a time ({@link DeferredFiling}: the pages
 * with nothing to pair with filed under one hold of the shard's lock, the others visited under their own
 * locks, {@link PageVisitor#visitDeferred}), then helps with the others'. So an unstable shard's lock,
 * count and buckets are written by one thread a batch, not passed between cores page by page: that
 * passing cost more than the lookups (docs/perf/engine.md#scan_threads); and a shard's lock is taken
 * once a chunk, not once a page, which made steady scans of unique pages faster on one thread too
 * (docs/perf/engine.md#scan_threads). Each thread has its own {@link PageVisitor}, so its own
 * freed-frame list and counters; the visits are safe side by side whoever runs them: each takes its
 * page's stripe, the unstable index is guarded per shard of keys ({@link MergeDomain#unstableLock}) and
 * the stable index by the domain's lock ({@link MergeDomain#stableLock}).
 *
 * <p>Why the same result: a full scan still visits every page once, and a merge still needs a full
 * compare under both pages' locks; only the order within a batch changes, and a page written between
 * the halves waits for its next visit. A page whose candidate was busy, in another thread maybe, is
 * tried again once the other threads are through the batch ({@link #retryBusy}); only a guest writer
 * can then keep it busy, as on one thread, so {@link Scanner#scanUntilStable} converges to the same
 * counters. A visit that throws, in either half or a retry, costs only its own page: its thread goes on
 * with the next, and the batch throws once every thread is done ({@link #run}), on one thread as on
 * several. So the full scan visits every other page, and its counters are the same.
 *
 * <p>Thread safety: the scanner's batch lock serializes {@link #add}, {@link #run} and {@link #flush};
 * counter getters are safe from any thread. Allocates nothing per batch once its list has grown.
 */
final class ScanWorkers implements AutoCloseable {

    /** The most pages in a run, the unit a thread claims: a chunk of the cursor. */
    static final int CLAIM = ScanCursor.CHUNK_PAGES;
    /**
     * Spins (about 20 microseconds here) before a waiting thread parks: longer than the scanner takes between
     * two batches of a full scan, so workers stay awake through a full scan and park between duty cycles.
     * Parking and waking cost more than a small batch on a virtual machine; spinning longer starves guest
     * writers where threads outnumber cores. */
    private static final int SPINS = 1 << 10;
    private static final long PARK_NANOS = 20_000;
    /** A run that read or listed for the indexes at most one page in this many is quiet ({@link #lastRunQuiet}). */
    static final int QUIET_SHARE = 16;

    private final DedupEngine engine;
    private final PageHasher hasher;
    /** Makes the worker threads; this class names them, marks them daemons and starts them. */
    private final ThreadFactory threadFactory;
    private final ThreadMXBean threadBean = ManagementFactory.getThreadMXBean();
    /** One per worker thread ever started, kept for their counters when the thread count drops. */
    private volatile PageVisitor[] visitors = new PageVisitor[0];
    private final List<FreedFrames> freed = new ArrayList<>();
    /** CPU time of the workers that have ended, each added as it ends. */
    private final java.util.concurrent.atomic.AtomicLong endedCpuNanos = new java.util.concurrent.atomic.AtomicLong();
    private static final Thread[] NO_THREADS = new Thread[0];
    private Thread[] workerThreads = NO_THREADS;
    /** Bumped for each batch; workers wait for it to move. */
    private volatile long generation;
    /**
     * The crew of workers that is to run: every stop moves it on, and a worker runs only while the crew
     * is still the one it was started in. A stop flag that the next start cleared kept a worker that had
     * not read it yet (its stop cut short: the caller interrupted, or the join timed out) running beside
     * its replacement, on the same part and visitor.
     */
    private volatile int crew;
    /** Workers still visiting this batch. */
    private final AtomicInteger pending = new AtomicInteger();

    /** The batch's pages to visit. */
    private final ListedRuns runs = new ListedRuns();
    /** The last run read or listed a {@value #QUIET_SHARE}th of its pages at most ({@link #lastRunQuiet}). */
    private boolean quiet;
    /** Per thread's part of the list: the next run to claim, and the part's end. */
    private java.util.concurrent.atomic.AtomicIntegerArray nextClaim = new java.util.concurrent.atomic.AtomicIntegerArray(0);
    private int[] partEnd = new int[0];
    /** The first throwable a visit threw in this batch, on any thread: an exception, checked or not, or an error. */
    private final AtomicReference<Throwable> failure = new AtomicReference<>();
    /** Frames the threads fault in for the pool's warm list after their parts of this batch, shared out. */
    private int replenish;
    /** Frames the threads faulted in for the warm list since {@link #takeReplenished}. */
    private final AtomicInteger replenished = new AtomicInteger();
    /** Threads still in the first half of this batch. */
    private final AtomicInteger firstHalfPending = new AtomicInteger();
    /** Per thread, the pages it deferred to the second half, by owner. */
    private DeferredMerges[] deferred = new DeferredMerges[0];
    /** Per thread, the pages whose candidate was busy in this batch, to try again alone ({@link #retryBusy}). */
    private DeferredMerges[] busy = new DeferredMerges[0];
    /** Per thread, its second half's filing ({@link DeferredFiling}). */
    private DeferredFiling[] filings = new DeferredFiling[0];
    /** Per owner and producing thread, the next deferred page to claim. */
    private java.util.concurrent.atomic.AtomicIntegerArray deferredClaim = new java.util.concurrent.atomic.AtomicIntegerArray(0);

    ScanWorkers(DedupEngine engine, PageHasher hasher) {
        this(engine, hasher, Thread::new);
    }

    /** With the worker threads made by {@code threadFactory}: for tests, a factory that fails. */
    ScanWorkers(DedupEngine engine, PageHasher hasher, ThreadFactory threadFactory) {
        this.engine = engine;
        this.hasher = hasher;
        this.threadFactory = threadFactory;
    }

    /** Lists pages {@code first} to {@code first + length - 1} of {@code guest} for the next {@link #run}. */
    void add(Guest guest, int first, int length) {
        runs.add(guest, first, length);
    }

    /**
     * Visits every listed page on {@code threads} threads, the caller's with {@code own}, then empties
     * the list. Each thread then faults in its share of {@code replenish} frames for the pool's warm
     * list ({@link FramePool#replenishWarm}): in merge passes on one thread that refill took 15% of the
     * time (JFR), and on the caller's thread alone the others would wait through it
     * (docs/perf/engine.md#scan_threads). A visit that throws costs only its page: every other listed
     * page is still visited. The first throwable a visit threw, on any thread, is thrown
     * unchanged once all threads are done, as one thread would have thrown it: an {@link Error}, an
     * unchecked exception, or a checked one that a hasher written in a language without checked
     * exceptions throws undeclared. The workers stay for the next batch: a worker that died of what it
     * threw left the next batch waiting for it forever. {@link #takeReplenished} then tells how many
     * frames the threads faulted in, even after a throw.
     */
    void run(PageVisitor own, int threads, int replenish) {
        try {
            startWorkers(threads - 1);
            split(threads);
            failure.set(null);
            this.replenish = replenish;
            firstHalfPending.set(threads);
            pending.set(threads - 1);
            long read = own.pagesHashed() + sum(PageVisitor::pagesHashed);     // before any worker hashes
            generation++;                   // publishes the list and the parts to the workers
            for (Thread worker : workerThreads) {
                LockSupport.unpark(worker);
            }
            visitBothHalves(own, 0);
            awaitNone(pending);
            retryBusy(own);
            read = own.pagesHashed() + sum(PageVisitor::pagesHashed) - read;
            for (DeferredMerges list : deferred) {
                read += list.size();
                list.clear();               // every thread is done with them: drop the guests
            }
            quiet = runs.pages() == 0 ? quiet : read * QUIET_SHARE <= runs.pages();     // none: nothing learned
            Throwable first = failure.get();
            if (first != null) {
                LangUtil.rethrowUnchecked(first);   // as it is, checked or not
            }
        } finally {
            runs.clear();
        }
    }

    /**
     * True if the last {@link #run} of any pages read or listed for the indexes at most a {@value
     * #QUIET_SHARE}th of them, as in a steady scan: the {@link Scanner} then lists a bigger part next ({@link
     * Scanner#QUIET_PART_PAGES}), as the lists stay short, so the threads wait for each other less often.
     */
    boolean lastRunQuiet() {
        return quiet;
    }

    /** Spins, then parks, until {@code threads} is 0. */
    private static void awaitNone(AtomicInteger threads) {
        for (int spins = 0; threads.get() > 0; spins++) {
            if (spins < SPINS) {
                Thread.onSpinWait();
            } else {
                LockSupport.parkNanos(PARK_NANOS);
            }
        }
    }

    /**
     * Visits again, on the caller's thread alone, each page that found the candidate it would pair with
     * busy, so busy in another scanner thread, maybe. Left for its next visit, such a page could find
     * it busy there too, scan after scan, early in a batch where the threads' parts start: the counters
     * of two scans then agreed with pages still waiting, and {@link Scanner#scanUntilStable} settled
     * short of what one thread reaches. Now only a guest writer can keep a candidate busy, as on one
     * thread. A page written or merged since is passed by ({@link PageVisitor#visitDeferred}). A retry
     * that throws costs only its page ({@link DeferredFiling#retry}): the rest of the list is still tried.
     */
    private void retryBusy(PageVisitor own) {
        for (DeferredMerges list : busy) {
            DeferredFiling.retry(own, list, failure);
        }
    }

    /** A worker: waits for each batch (spinning a little, then parked), visits its part and helps. */
    private void work(PageVisitor visitor, int part, long startedAt, int mine) {
        long seen = startedAt;
        while (true) {
            for (int spins = 0; generation == seen && crew == mine; spins++) {
                if (spins < SPINS) {
                    Thread.onSpinWait();
                } else {
                    LockSupport.park(this);
                }
            }
            if (crew != mine) {         // read after generation, which a batch publishes after a stop
                if (threadBean.isCurrentThreadCpuTimeSupported()) {
                    endedCpuNanos.addAndGet(threadBean.getCurrentThreadCpuTime());
                }
                return;
            }
            seen = generation;
            try {
                visitBothHalves(visitor, part);
            } finally {
                pending.decrementAndGet();
            }
        }
    }

    /**
     * A batch's two halves on one thread: the first visits its part and defers the pages that need the
     * indexes by shard (alone, only those it did not read: {@link PageVisitor#deferReadPages}); once all
     * threads are through it, the second looks up the pages this thread owns, then helps with the others';
     * last, the thread gives back its merges' freed frames and faults in its share of the warm refill.
     */
    private void visitBothHalves(PageVisitor visitor, int part) {
        visitor.deferTo = deferred[part];
        visitor.deferReadPages = partEnd.length > 1;
        visitor.retryTo = busy[part];
        try {
            visitClaimed(visitor, part);
        } catch (Throwable e) {             // none from a visit; a worker that died of one would hang the next batch
            failure.compareAndSet(null, e);
        } finally {
            visitor.deferTo = null;
            firstHalfPending.decrementAndGet();
        }
        awaitNone(firstHalfPending);
        try {
            visitDeferredClaimed(visitor, part);
        } catch (Throwable e) {             // as in the first half
            failure.compareAndSet(null, e);
        } finally {
            visitor.retryTo = null;
        }
        try {
            visitor.flushFreed();           // each thread returns its own frees, side by side
            int threads = partEnd.length;
            int share = replenish / threads + (part < replenish % threads ? 1 : 0);
            replenished.addAndGet(engine.pool().replenishWarm(share));
        } catch (Throwable e) {
            failure.compareAndSet(null, e);
        }
    }

    /**
     * The second half: the deferred pages of the shards thread {@code own} owns ({@link
     * DeferredMerges#ownerOf}) from every thread's lists, a shard at a time, up to {@value #CLAIM} pages
     * of one shard a claim ({@link DeferredFiling}), then the other owners' in turn. Each thread starts
     * in the lists its own part of the batch made: starting in the same list, threads walked the same pages in step
     * and found their pairs' stripes busy (a run of pages shares one, {@link PageStripes}). The caller
     * empties the lists once every thread is done.
     */
    private void visitDeferredClaimed(PageVisitor visitor, int own) {
        int threads = partEnd.length;
        int shards = UnstableShards.SHARDS;
        for (int k = 0; k < threads; k++) {
            int owner = (own + k) % threads;
            int firstShard = (owner * shards + threads - 1) / threads;
            int endShard = ((owner + 1) * shards + threads - 1) / threads;
            for (int shard = firstShard; shard < endShard; shard++) {
                for (int j = 0; j < threads; j++) {
                    int producer = (own + j) % threads;
                    DeferredMerges list = deferred[producer];
                    int claims = shard * threads + producer;
                    int end = list.count(shard);
                    // Read before claiming: an empty list's claim stays put instead of passing between the cores.
                    for (int start = deferredClaim.get(claims) < end ? deferredClaim.getAndAdd(claims, CLAIM) : end; start < end;
                            start = deferredClaim.getAndAdd(claims, CLAIM)) {
                        filings[own].file(visitor, list, shard, start, Math.min(end, start + CLAIM), failure);
                    }
                }
            }
        }
    }

    /**
     * Gives each thread a contiguous part of the list: threads then work at different page offsets, so
     * a pair's other page is rarely busy in another thread, and, since a run of neighbouring pages
     * shares a stripe ({@link PageStripes}), each thread takes stripes the others do not. When the number
     * of threads changes, the per-thread arrays are all made before any replaces the old: one made and
     * the next refused (an {@link OutOfMemoryError}) left them of different lengths, never made again,
     * and a worker whose part had no list could throw before it counted itself through the first half,
     * so the others waited for it forever.
     */
    private void split(int threads) {
        if (nextClaim.length() != threads) {
            java.util.concurrent.atomic.AtomicIntegerArray claims =
                    new java.util.concurrent.atomic.AtomicIntegerArray(threads);
            int[] ends = new int[threads];
            java.util.concurrent.atomic.AtomicIntegerArray ownerClaims =
                    new java.util.concurrent.atomic.AtomicIntegerArray(UnstableShards.SHARDS * threads);
            DeferredMerges[] deferrals = new DeferredMerges[threads];
            DeferredMerges[] busyPages = new DeferredMerges[threads];
            DeferredFiling[] threadFilings = new DeferredFiling[threads];
            for (int t = 0; t < threads; t++) {
                deferrals[t] = new DeferredMerges(UnstableShards.SHARDS);
                busyPages[t] = new DeferredMerges(1);
                threadFilings[t] = new DeferredFiling();
            }
            nextClaim = claims;
            partEnd = ends;
            deferredClaim = ownerClaims;
            deferred = deferrals;
            busy = busyPages;
            filings = threadFilings;
        }
        for (int c = 0; c < UnstableShards.SHARDS * threads; c++) {
            deferredClaim.set(c, 0);
        }
        for (int t = 0; t < threads; t++) {
            nextClaim.set(t, (int) ((long) runs.count() * t / threads));
            partEnd[t] = (int) ((long) runs.count() * (t + 1) / threads);
        }
    }

    /**
     * Visits its own part a run at a time, then helps with the others' parts. A visit that throws costs
     * only its page: the throwable is kept for the batch's caller ({@link #run}) and the thread goes on
     * with the next page, and claims runs as before. Caught outside the loops, it ended the thread's first
     * half: the rest of its run, up to {@value #CLAIM} pages, went unvisited in that full scan, which one
     * thread's next batch would have visited.
     */
    private void visitClaimed(PageVisitor visitor, int own) {
        int parts = partEnd.length;
        for (int k = 0; k < parts; k++) {
            int part = (own + k) % parts;
            int end = partEnd[part];
            for (int run = nextClaim.getAndIncrement(part); run < end; run = nextClaim.getAndIncrement(part)) {
                Guest guest = runs.guest(run);
                int stop = runs.endPage(run);
                for (int page = runs.firstPage(run); page < stop; page++) {
                    try {
                        visitor.visit(guest, page);
                    } catch (Throwable e) {
                        failure.compareAndSet(null, e);
                    }
                }
            }
        }
    }

    /**
     * Bytes of the batch's lists, grown by the first batches ({@link MetadataSizes}): runs, each thread's
     * deferred and busy pages and filing, claims. Any thread: a list growing meanwhile counts either size.
     */
    long metadataBytes() {
        long bytes = runs.metadataBytes() + MetadataSizes.array(deferredClaim.length(), Integer.BYTES);
        DeferredMerges[] lists = deferred, retries = busy;
        DeferredFiling[] filed = filings;
        for (int t = 0; t < Math.min(lists.length, Math.min(retries.length, filed.length)); t++) {
            bytes += lists[t].metadataBytes() + retries[t].metadataBytes() + filed[t].metadataBytes();
        }
        return bytes;
    }

    /** Frames the threads faulted in for the pool's warm list since the last call; resets the count. */
    int takeReplenished() {
        return replenished.getAndSet(0);
    }

    /**
     * Hands back to the pool any frames the workers' visits freed and did not return themselves. A
     * safety net: each worker returns its own at the end of its part of every batch, even after a visit
     * threw, so this normally finds none.
     */
    void flush() {
        for (FreedFrames f : freed) {
            f.flush();
        }
    }

    long sum(java.util.function.ToLongFunction<PageVisitor> counter) {
        long total = 0;
        for (PageVisitor v : visitors) {
            total += counter.applyAsLong(v);
        }
        return total;
    }

    /**
     * CPU time of the worker threads so far, for the scan-time advisor: the running workers' and what
     * the ended ones had used when they ended. Called by the scanner's thread, which is also the one
     * that ends workers.
     */
    long cpuNanos() {
        long total = endedCpuNanos.get();
        for (Thread t : workerThreads) {
            long cpu = threadBean.isThreadCpuTimeSupported() ? threadBean.getThreadCpuTime(t.threadId()) : -1;
            total += Math.max(0, cpu);
        }
        return total;
    }

    /** Ends the worker threads, if any are running: {@code scan_threads} went back to 1. */
    void stopIdle() {
        if (workerThreads.length > 0) {
            stopWorkers();
        }
    }

    /**
     * Starts {@code wanted} workers in place of the running ones, all or none: if one cannot be made or
     * started (the system refuses a thread: an {@link OutOfMemoryError}), those started end and it is
     * thrown, and the next batch tries again. Kept, the workers started would have split the next batch
     * with one that never ran, and waited for it forever.
     */
    private void startWorkers(int wanted) {
        if (wanted == workerThreads.length) {
            return;
        }
        stopWorkers();
        PageVisitor[] grown = visitors;
        while (grown.length < wanted) {
            FreedFrames f = new FreedFrames(engine.pool());
            freed.add(f);
            grown = java.util.Arrays.copyOf(grown, grown.length + 1);
            grown[grown.length - 1] = new PageVisitor(engine, hasher, f);
        }
        visitors = grown;
        int mine = crew;
        Thread[] started = new Thread[wanted];
        long now = generation;          // a worker that starts after the next batch is published still sees it
        int running = 0;
        try {
            for (; running < wanted; running++) {
                PageVisitor visitor = grown[running];
                int part = running + 1;
                Thread worker = threadFactory.newThread(() -> work(visitor, part, now, mine));
                worker.setName("samepage-scanner-" + part);
                worker.setDaemon(true);
                worker.start();
                started[running] = worker;
            }
        } catch (Throwable e) {
            workerThreads = java.util.Arrays.copyOf(started, running);
            stopWorkers();
            throw e;
        }
        workerThreads = started;
    }

    /**
     * Ends the worker threads, if any, and waits for them; interrupted, it stops waiting, and they end on
     * their own whatever starts next.
     */
    private void stopWorkers() {
        crew++;                         // one writer: the caller, under the scanner's batch lock
        for (Thread t : workerThreads) {
            LockSupport.unpark(t);
        }
        for (Thread t : workerThreads) {
            try {
                t.join(TimeUnit.SECONDS.toMillis(10));
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                break;
            }
        }
        workerThreads = NO_THREADS;       // allocates nothing: a close that ran out of heap gets here too
    }

    /** Stops the worker threads and waits for them to end. */
    @Override
    public void close() {
        stopWorkers();
    }
}
