package io.samepage.image;

import io.samepage.core.DedupEngine;

/**
 * The worker threads of one {@link ImageLoader}: each claims the oldest {@link LoadBatch} the loading thread
 * has given and no worker has claimed, resolves it with its own {@link BatchResolver} (its own installer,
 * open files and read buffer), and finishes it. Daemon threads named {@value #THREAD_NAME}-N, started with
 * the loader and stopped by {@link #close()}, which returns once every one of them has ended.
 *
 * <h2>Hand-off</h2>
 * The loading thread gives batches into a {@link Handoff} shared by every worker, {@value Handoff#PER_WORKER}
 * places per worker, each batch under a ticket, and wakes an idle worker if there is one. A worker
 * claims a batch with one compare-and-set of the batch's claim word, from "open as ticket t" to "held by
 * worker w", and finishes it with one write of that word, which is at once what {@link LoadBatch#await}
 * waits for and what lets go of the batch. So a batch is never held by a worker in particular until a
 * worker is free to resolve it, and the claim is the only record of who holds it: there is no moment at
 * which a worker holds a batch that memory the other threads see does not say it holds.
 *
 * <p>That is what makes the hand-off airtight against a throwable that surfaces anywhere on a worker: a
 * fault the JVM raises late (its InternalError for a read of a mapped file cut short, raised at the
 * thread's next check after the read: a call, a return, a loop's turn), a StackOverflowError or an
 * OutOfMemoryError. Before the compare-and-set succeeds the batch is open, and another worker (or this one,
 * once it has dealt with the throwable) claims it; from the instant it succeeds the batch says it is held
 * by this worker, whether or not the worker got to store what the claim returned, and it stays in its
 * place in the hand-off until it is finished, since the loading thread replaces only a finished batch
 * ({@link Handoff#give}). A batch taken out of a queue, or claimed first and recorded as held after, would
 * be in nobody's hands between the two, and a throwable there would leave the load waiting for it for ever.
 *
 * <p>Whatever a throwable interrupts, the worker deals with it in {@link #settle}: if it holds a batch, found
 * in the hand-off's places by its claim word ({@link Handoff#failHeld}), the batch fails whole with the
 * throwable ({@link LoadBatch#failWhole}) and is finished; otherwise the throwable is the worker's stray
 * (below). Then the worker goes on, since one that ended would hold the loading thread up for ever if
 * every worker did. Only the interrupt of {@link #close()}, met while the worker finds no batch to claim,
 * ends it.
 *
 * <h2>Strays</h2>
 * A throwable a worker meets while it holds no batch is kept as its stray ({@link LoadWorker#keep}), and
 * belongs to the load of the last batch the worker began ({@link #startLoad} says which load the batches
 * given from then on belong to): a fault the JVM raises late comes from a read the worker made, and a
 * worker reads the index and frames only in its batches. It is reported by, in this order of precedence:
 * <ul>
 *   <li>the next batch of that load the worker begins, which fails with it before any of its blocks is
 *       resolved;</li>
 *   <li>that load, as it ends ({@link #takeStray}), once its last batch is finished, whether it went well
 *       or failed: it fails with it (one that failed otherwise too, with both: {@link LoadFailures});</li>
 *   <li>the next load to start ({@link #startLoad}), for a stray that surfaced after its load took its
 *       strays (that load returned as if all was well, or with a failure of its own). The load it
 *       belongs to can no longer fail, and the next one did nothing wrong: failing it with the stray as
 *       its own would tell its caller something false (with an index file cut short, CORRUPT, and its
 *       whole range emptied) and nothing about the load the stray may have spoilt. So the next load fails,
 *       before it changes anything, with an error naming the load the stray belongs to, if the stray may
 *       have spoilt the pages that load left ({@link LoadRecord#lateFault}: a fault in a memory access, of
 *       a load that did not fail with CORRUPT): its caller can load those blocks again, and then this
 *       load. Any other stray is dropped, as is one of no load (met before the worker's first batch): it
 *       was thrown by the worker's own code between batches, which reads no mapped memory, so no page
 *       depends on it, and failing a load for it would leave the caller nothing to do but try again.</li>
 * </ul>
 *
 * <p>{@link #startLoad}, {@link #submit} and {@link #takeStray} are called by the loading thread only.
 * Allocates nothing per batch.
 */
final class LoadWorkers implements AutoCloseable {

    /** The worker threads' name, followed by {@code -N}. */
    static final String THREAD_NAME = "samepage-image-load";

    private final LoadWorker[] workers;
    private final Handoff handoff;
    private final Thread[] threads;
    private final Seams seams;
    /** The index's name, for the errors of {@link #startLoad}. */
    private final String origin;
    /** The load the batches {@link #submit} gives belong to; null before the first {@link #startLoad}. */
    private LoadRecord current;
    /** {@link #startLoad}'s own: the stray it saw of each worker, to take once every error is built. */
    private final Throwable[] seen;

    /**
     * The points of the hand-off where a test makes a thread throw (or wait), as a fault the JVM raises
     * late does when it surfaces there: the first three on the worker thread, the others on the loading
     * thread. A loader passes {@link #NONE}.
     */
    interface Seams {

        /** Does nothing anywhere. */
        Seams NONE = new Seams() { };

        /** Before the worker looks for its next batch, holding none. */
        default void beforeNextBatch() {
        }

        /**
         * Right after the worker claimed a batch, before it stores or reads anything of it: the claim is
         * its only record of the batch.
         */
        default void handedOver() {
        }

        /** Right after the worker finished a batch, outside the resolution. */
        default void afterBatch() {
        }

        /** On the loading thread, right after {@link #submit} gave a batch to a worker, before it returns. */
        default void afterGive() {
        }

        /** On the loading thread, in {@link #submit}, right after the batch was opened, before it is published. */
        default void beforePublish() {
        }

        /** On the loading thread, in {@link #submit}, right after the batch was published, before a worker is woken. */
        default void afterPublish() {
        }

        /** On the loading thread, in {@link LoadBatch#await}, each time before it parks for a batch not yet finished. */
        default void beforePark() {
        }

        /** On the loading thread, in {@link #startLoad}, as it builds the error that reports a stray (which allocates). */
        default void reportingStray() {
        }
    }

    /**
     * {@code count} workers, which hold at most {@code Handoff.PER_WORKER * count} batches in flight;
     * {@code seams} is {@link Seams#NONE} but in tests.
     */
    LoadWorkers(ImageIndex index, DedupEngine engine, int count, Seams seams) {
        this.seams = seams;
        this.origin = index.origin();
        workers = new LoadWorker[count];
        seen = new Throwable[count];
        threads = new Thread[count];
        BatchResolver[] resolvers = new BatchResolver[count];
        for (int t = 0; t < count; t++) {
            resolvers[t] = new BatchResolver(index, engine);    // here: a failure fails the loader, not a thread
        }
        for (int t = 0; t < count; t++) {
            BatchResolver resolver = resolvers[t];
            LoadWorker worker = new LoadWorker(t);
            Thread thread = new Thread(() -> run(worker, resolver), THREAD_NAME + "-" + t);
            thread.setDaemon(true);
            worker.thread = thread;
            workers[t] = worker;
            threads[t] = thread;
        }
        handoff = new Handoff(workers, seams);
        for (Thread thread : threads) {
            thread.start();
        }
    }

    /**
     * Starts {@code load}: the batches {@link #submit} gives from now on belong to it. First takes every
     * stray the workers keep, which all belong to loads that have ended (the loading thread has no batch in
     * flight), or to none, and throws for the first that may have spoilt the pages its load left
     * ({@link LoadRecord#lateFault}), with the errors for any others that may as suppressed (each names its
     * load); the rest are dropped. It builds every error before it takes any stray, so one that cannot be
     * built (the heap is full) fails this load before it changes anything and leaves every stray to the next.
     *
     * @throws ImageIndexException IO naming the load a stray belongs to
     */
    void startLoad(LoadRecord load) {
        current = load;
        ImageIndexException report = null;
        for (int w = 0; w < workers.length; w++) {
            LoadRecord of = workers[w].strayLoad();
            Throwable stray = workers[w].strayOf(of);
            seen[w] = stray;
            if (stray == null || of == null) {
                continue;
            }
            seams.reportingStray();
            ImageIndexException late = of.lateFault(origin, stray);
            if (late == null) {
                continue;
            }
            if (report == null) {
                report = late;
            } else {
                report.addSuppressed(late);
            }
        }
        for (int w = 0; w < workers.length; w++) {
            workers[w].takeSeen(seen[w]);      // a stray kept since it was seen is left for the next load
            seen[w] = null;
        }
        if (report != null) {
            throw report;
        }
    }

    /**
     * Gives {@code batch} (reset already), of the load last started, to the workers; never blocks, since the
     * loading thread has at most as many batches in flight as the hand-off holds, and gets them back in the
     * order it gave them.
     *
     * @throws IllegalStateException if more batches would be in flight than the hand-off holds
     */
    void submit(LoadBatch batch) {
        handoff.give(batch, current);
        seams.afterGive();
    }

    /**
     * Runs {@link #serve} until it returns (close()), again after any throwable, which the next serve
     * settles. Each handler only stores what it caught; the outer one catches what surfaces on the way
     * from the inner handler to its loop's next turn (a late fault met while the inner handler had caught
     * something else). Only a third throwable in a row, on the way from the outer handler to its loop's
     * next turn, would end the worker: there nothing reads memory, allocates or calls.
     */
    private void run(LoadWorker worker, BatchResolver resolver) {
        try (resolver) {
            Throwable thrown = null;
            while (true) {
                try {
                    while (true) {
                        try {
                            serve(worker, resolver, thrown);
                            return;
                        } catch (Throwable e) {
                            thrown = e;
                        }
                    }
                } catch (Throwable e) {
                    thrown = e;
                }
            }
        }
    }

    /**
     * Settles {@code thrown} unless it is null, then claims and resolves batches, oldest first, until the
     * interrupt of close() finds the worker with none to claim.
     */
    private void serve(LoadWorker worker, BatchResolver resolver, Throwable thrown) {
        if (thrown != null) {
            settle(worker, thrown);
        }
        while (true) {
            seams.beforeNextBatch();
            LoadBatch batch = handoff.claim(worker);
            if (batch == null) {
                if (Thread.currentThread().isInterrupted()) {
                    return;    // close(): the loader is done with its workers. Not cleared: seen again if this throws
                }
                worker.awaitBatch(handoff, this);
                continue;
            }
            seams.handedOver();
            LoadRecord load = batch.load();
            worker.lastLoad = load;
            Throwable late = worker.strayOf(load);
            if (late != null) {
                batch.failWhole(late);
                worker.takeStray(load);     // only once the batch holds it: never lost
            } else {
                resolver.resolve(batch);
            }
            batch.finish();         // lets go: the loading thread may reuse the batch from here on
            handoff.wakeLoader();
            seams.afterBatch();
        }
    }

    /**
     * Deals with {@code thrown}, which {@code worker} met: if it holds a batch, that batch fails whole with it
     * and is finished; otherwise it is kept as the stray. Either way the loading thread is woken, in case
     * {@code thrown} cut off the wake after a finish. A throwable that surfaces in here is settled the same way
     * next, from what the hand-off then says.
     */
    private void settle(LoadWorker worker, Throwable thrown) {
        worker.stopWaiting();
        if (!handoff.failHeld(worker, thrown)) {
            worker.keep(thrown);
        }
        handoff.wakeLoader();
    }

    /**
     * Takes the strays of the load last started, throwables workers met while they held no batch, after a
     * batch of that load, that no batch has failed with: one, with any others added as suppressed (a fault
     * in a memory access first: {@link LoadFailures#together}); null if there is none. The loading thread
     * calls it at the end of every load, once its last batch is finished, whether the load went well or
     * failed, so that the load reports them; one met after that call is left to {@link #startLoad}.
     */
    Throwable takeStray() {
        Throwable taken = null;
        for (LoadWorker worker : workers) {
            taken = LoadFailures.together(taken, worker.takeStray(current));
        }
        return taken;
    }

    /** CPU time the worker threads have used so far, in nanoseconds; a thread the JVM cannot measure counts 0. */
    long cpuNanos() {
        java.lang.management.ThreadMXBean bean = java.lang.management.ManagementFactory.getThreadMXBean();
        long total = 0;
        for (Thread thread : threads) {
            total += Math.max(0, bean.isThreadCpuTimeSupported() ? bean.getThreadCpuTime(thread.threadId()) : 0);
        }
        return total;
    }

    /** Stops every worker and waits for it to end. Call only with no batch in flight. */
    @Override
    public void close() {
        for (Thread thread : threads) {
            thread.interrupt();
        }
        boolean interrupted = false;
        for (Thread thread : threads) {
            while (thread.isAlive()) {
                try {
                    thread.join();
                } catch (InterruptedException e) {
                    interrupted = true;
                }
            }
        }
        if (interrupted) {
            Thread.currentThread().interrupt();
        }
    }
}
