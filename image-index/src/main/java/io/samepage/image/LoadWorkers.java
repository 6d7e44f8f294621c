package io.samepage.image;

import io.samepage.core.DedupEngine;
import java.util.concurrent.locks.LockSupport;

/**
 * The worker threads of one {@link ImageLoader}: each resolves the {@link LoadBatch}es the loading thread
 * gives it, in order, with its own {@link BatchResolver} (its own installer, open files and read buffer),
 * and finishes each. Daemon threads named {@value #THREAD_NAME}-N, started with the loader and stopped by
 * {@link #close()}, which returns once every one of them has ended.
 *
 * <h2>Hand-off</h2>
 * Each worker has a {@link Handoff} of its own, with room for {@value Handoff#PLACES} batches.
 * {@link #submit} puts a batch in the hand-off of a worker with room, an idle one first; the worker reads
 * it there, and finishes it with one write (its count of batches finished), which is at once what
 * {@link LoadBatch#await} waits for and what lets go of the batch. A worker never takes a batch out of a
 * shared queue: a batch is in the worker's hand-off from the moment it is given until that write. This
 * is what makes the hand-off airtight against a throwable that surfaces anywhere: a fault the JVM raises
 * late (its InternalError for a read of a mapped file cut short, raised at the thread's next check after
 * the read: a call, a return, a loop's turn), a StackOverflowError or an OutOfMemoryError. A batch taken
 * out of a queue would be in nobody's hands from the moment take removed it until the worker stored what
 * take returned, and a throwable in between would leave the load waiting for it for ever.
 *
 * <p>Whatever a throwable interrupts, the worker deals with it in {@link #settle}, which reads what it
 * needs from the hand-off: if the worker had begun a batch and not finished it, the batch fails whole with
 * the throwable ({@link LoadBatch#failWhole}) and is finished; otherwise the throwable is the worker's
 * stray (below). A batch given and not begun stays given. Then the worker goes on, since one that ended
 * would leave the batches given to it, and the loading thread with them, waiting for ever. Only the
 * interrupt of {@link #close()}, met while the worker holds no batch, ends it.
 *
 * <h2>Strays</h2>
 * A throwable a worker meets while it holds no batch is kept in its hand-off as its stray, and belongs to
 * the load of the last batch the worker began ({@link #startLoad} says which load the batches given from
 * then on belong to): a fault the JVM raises late comes from a read the worker made, and a worker reads
 * the index and frames only in its batches. It is reported by, in this order of precedence:
 * <ul>
 *   <li>the next batch of that load the worker begins, which fails with it before any of its blocks is
 *       resolved;</li>
 *   <li>that load, as it ends ({@link #takeStray}), once its last batch is finished: it fails with it;</li>
 *   <li>the next load to start ({@link #startLoad}), for a stray that surfaced after its load's end checks
 *       (that load returned as if all was well) or that a load which failed before them left. The load it
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

    private final Handoff[] hands;
    private final Thread[] threads;
    private final Seams seams;
    /** The index's name, for the errors of {@link #startLoad}. */
    private final String origin;
    /** The hand-off {@link #submit} looks at first: the one after the last idle worker it gave a batch. */
    private int next;
    /** The load the batches {@link #submit} gives belong to; null before the first {@link #startLoad}. */
    private LoadRecord current;

    /**
     * The points of the hand-off where a test makes a thread throw (or wait), as a fault the JVM raises
     * late does when it surfaces there: all but {@link #afterGive} on the worker thread. A loader passes
     * {@link #NONE}.
     */
    interface Seams {

        /** Does nothing anywhere. */
        Seams NONE = new Seams() { };

        /** Before the worker looks for its next batch, holding none. */
        default void beforeNextBatch() {
        }

        /** Right after a batch was handed to the worker, before the worker records that it holds it. */
        default void handedOver() {
        }

        /** Right after the worker finished a batch, outside the resolution. */
        default void afterBatch() {
        }

        /** On the loading thread, right after {@link #submit} gave a batch to a worker, before it returns. */
        default void afterGive() {
        }
    }

    /**
     * {@code count} workers, which hold at most {@code Handoff.PLACES * count} batches in flight;
     * {@code seams} is {@link Seams#NONE} but in tests.
     */
    LoadWorkers(ImageIndex index, DedupEngine engine, int count, Seams seams) {
        this.seams = seams;
        this.origin = index.origin();
        hands = new Handoff[count];
        threads = new Thread[count];
        BatchResolver[] resolvers = new BatchResolver[count];
        for (int t = 0; t < count; t++) {
            resolvers[t] = new BatchResolver(index, engine);    // here: a failure fails the loader, not a thread
        }
        for (int t = 0; t < count; t++) {
            BatchResolver resolver = resolvers[t];
            Handoff hand = new Handoff();
            Thread thread = new Thread(() -> run(hand, resolver), THREAD_NAME + "-" + t);
            thread.setDaemon(true);
            hand.worker = thread;
            hands[t] = hand;
            threads[t] = thread;
        }
        for (Thread thread : threads) {
            thread.start();
        }
    }

    /**
     * Starts {@code load}: the batches {@link #submit} gives from now on belong to it. First takes every
     * stray the workers keep, which all belong to loads that have ended (the loading thread has no batch in
     * flight), or to none, and throws for the first that may have spoilt the pages its load left
     * ({@link LoadRecord#lateFault}), with the errors for any others that may as suppressed (each names its
     * load); the rest are dropped.
     *
     * @throws ImageIndexException IO naming the load a stray belongs to
     */
    void startLoad(LoadRecord load) {
        current = load;
        ImageIndexException report = null;
        for (Handoff hand : hands) {
            LoadRecord of = hand.strayLoad();
            Throwable stray = hand.takeStray(of);
            ImageIndexException late = stray == null || of == null ? null : of.lateFault(origin, stray);
            if (late == null) {
                continue;
            }
            if (report == null) {
                report = late;
            } else {
                report.addSuppressed(late);
            }
        }
        if (report != null) {
            throw report;
        }
    }

    /**
     * Gives {@code batch} (reset already), of the load last started, to a worker, an idle one if there is
     * one; never blocks, since the loading thread has at most as many batches in flight as the workers hold.
     */
    void submit(LoadBatch batch) {
        Handoff some = null;
        for (int i = 0; i < hands.length; i++) {
            Handoff hand = hands[(next + i) % hands.length];
            if (hand.idle()) {
                next = (next + i + 1) % hands.length;
                some = hand;
                break;
            }
            if (some == null && hand.hasRoom()) {
                some = hand;
            }
        }
        if (some == null) {
            throw new IllegalStateException("more batches in flight than the workers hold");
        }
        some.give(batch, current);
        seams.afterGive();
    }

    /**
     * Runs {@link #serve} until it returns (close()), again after any throwable, which the next serve
     * settles. Each handler only stores what it caught; the outer one catches what surfaces on the way
     * from the inner handler to its loop's next turn (a late fault met while the inner handler had caught
     * something else). Only a third throwable in a row, on the way from the outer handler to its loop's
     * next turn, would end the worker: there nothing reads memory, allocates or calls.
     */
    private void run(Handoff hand, BatchResolver resolver) {
        try (resolver) {
            Throwable thrown = null;
            while (true) {
                try {
                    while (true) {
                        try {
                            serve(hand, resolver, thrown);
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
     * Settles {@code thrown} unless it is null, then resolves the batches given to {@code hand}, in order,
     * until the interrupt of close() finds the worker holding none.
     */
    private void serve(Handoff hand, BatchResolver resolver, Throwable thrown) {
        if (thrown != null) {
            settle(hand, thrown);
        }
        while (true) {
            seams.beforeNextBatch();
            long n = hand.finished;
            if (hand.idle()) {
                if (Thread.currentThread().isInterrupted()) {
                    return;    // close(): the loader is done with its workers. Not cleared: seen again if this throws
                }
                LockSupport.park(this);
                continue;
            }
            LoadBatch batch = hand.batch(n);
            seams.handedOver();
            LoadRecord load = hand.load(n);
            hand.lastLoad = load;
            hand.begun = n + 1;     // from here until it is finished, a throwable fails the batch
            Throwable late = hand.strayOf(load);
            if (late != null) {
                batch.failWhole(late);
                hand.takeStray(load);   // only once the batch holds it: never lost
            } else {
                resolver.resolve(batch);
            }
            hand.finish(n);         // lets go: the loading thread may reuse the batch from here on
            seams.afterBatch();
        }
    }

    /**
     * Deals with {@code thrown}, which the worker of {@code hand} met: if it had begun a batch and not
     * finished it, that batch fails whole with it and is finished; otherwise it is kept as the stray. Either
     * way the loading thread is woken, in case {@code thrown} cut off the wake after a finish. A throwable
     * that surfaces in here is settled the same way next, from what the hand-off then says.
     */
    private void settle(Handoff hand, Throwable thrown) {
        long n = hand.finished;
        if (hand.begun > n) {
            hand.batch(n).failWhole(thrown);
            hand.finish(n);
        } else {
            hand.keep(thrown);
            hand.wake();
        }
    }

    /**
     * Takes the strays of the load last started, throwables workers met while they held no batch, after a
     * batch of that load, that no batch has failed with: the first, with any others added as suppressed;
     * null if there is none. The loading thread calls it at the end of a load, once its last batch is
     * finished, so that the load fails with them; one met after that call is left to {@link #startLoad}.
     */
    Throwable takeStray() {
        Throwable taken = null;
        for (Handoff hand : hands) {
            Throwable stray = hand.takeStray(current);
            if (taken == null) {
                taken = stray;
            } else if (stray != null && stray != taken) {
                taken.addSuppressed(stray);
            }
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
