package io.samepage.image;

import io.samepage.core.DedupEngine;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.atomic.AtomicReference;

/**
 * The worker threads of one {@link ImageLoader}: each takes the next {@link LoadBatch} from a queue,
 * resolves it with its own {@link BatchResolver} (its own installer, open files and read buffer), and
 * completes it. Daemon threads named {@value #THREAD_NAME}-N, started with the loader and stopped by
 * {@link #close()}, which returns once every one of them has ended.
 *
 * <p>{@link #submit} and {@link #takeStray} are called by the loading thread only.
 */
final class LoadWorkers implements AutoCloseable {

    /** The worker threads' name, followed by {@code -N}. */
    static final String THREAD_NAME = "samepage-image-load";

    private final BlockingQueue<LoadBatch> queue;
    private final Thread[] threads;
    private final Seams seams;
    /** What a worker met while it held no batch, until a batch fails with it or {@link #takeStray} takes it. */
    private final AtomicReference<Throwable> stray = new AtomicReference<>();

    /**
     * The points of a worker's loop where a test makes it throw (or wait), as a fault the JVM raises late
     * does when it surfaces there. Each runs on the worker thread; a loader passes {@link #NONE}.
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

        /** Right after the worker completed a batch, outside the resolution. */
        default void afterBatch() {
        }
    }

    /**
     * {@code count} workers, which take at most {@code 2 * count} batches in flight; {@code seams} is
     * {@link Seams#NONE} but in tests.
     */
    LoadWorkers(ImageIndex index, DedupEngine engine, int count, Seams seams) {
        this.queue = new ArrayBlockingQueue<>(2 * count);
        this.seams = seams;
        threads = new Thread[count];
        BatchResolver[] resolvers = new BatchResolver[count];
        for (int t = 0; t < count; t++) {
            resolvers[t] = new BatchResolver(index, engine);    // here: a failure fails the loader, not a thread
        }
        for (int t = 0; t < count; t++) {
            BatchResolver resolver = resolvers[t];
            Thread thread = new Thread(() -> run(resolver), THREAD_NAME + "-" + t);
            thread.setDaemon(true);
            threads[t] = thread;
        }
        for (Thread thread : threads) {
            thread.start();
        }
    }

    /**
     * Queues {@code batch} (reset already) for the next free worker; never blocks, since the loading
     * thread has at most as many batches in flight as the queue holds.
     */
    void submit(LoadBatch batch) {
        if (!queue.offer(batch)) {
            throw new IllegalStateException("more batches in flight than the workers' queue holds");
        }
    }

    /**
     * Resolves batches until {@link #close()}; {@code resolver} was made on the loading thread, then handed
     * over. Whatever a resolution throws fails its batch ({@link LoadBatch#failWhole}) and the worker goes
     * on: a worker that ended left the batches queued behind it waiting, and the loading thread with them,
     * for ever. Something thrown while the worker holds no batch (a fault the JVM raised late, after the
     * batch whose read met it completed) is kept as the stray, shared by the workers: the next batch a
     * worker takes fails with it, unless the loading thread takes it first ({@link #takeStray}), so that a
     * load reports it. Only the interrupt of {@link #close()}, met while waiting for a batch, ends a worker.
     *
     * <p>A late fault surfaces wherever the thread next checks for one: a call, a return, a loop's turn,
     * here as much as in a resolution (after {@link LoadBatch#complete}, say). So all the work of a turn
     * runs inside the inner try, a throwable being dealt with at the top of the next turn, and the inner
     * handler only stores it; the outer try catches one that surfaces on the way from that handler to the
     * next turn (a late fault met while the inner handler had caught something else). Allocates nothing.
     */
    private void run(BatchResolver resolver) {
        try (resolver) {
            LoadBatch held = null;      // taken and not completed: the batch a throwable now fails
            Throwable thrown = null;    // caught and not dealt with yet
            while (true) {
                try {
                    while (true) {
                        try {
                            if (thrown != null) {
                                if (held != null) {
                                    held.failWhole(thrown);
                                    LoadBatch failed = held;
                                    held = null;
                                    thrown = null;
                                    failed.complete();
                                } else {
                                    Throwable kept = stray.compareAndExchange(null, thrown);
                                    if (kept != null && kept != thrown) {
                                        kept.addSuppressed(thrown);
                                    }
                                    thrown = null;
                                }
                            }
                            seams.beforeNextBatch();
                            LoadBatch taken = queue.take();
                            seams.handedOver();
                            held = taken;
                            Throwable late = stray.get();
                            if (late != null) {
                                held.failWhole(late);
                                stray.compareAndSet(late, null);    // only once the batch holds it: never lost
                            } else {
                                resolver.resolve(held);
                            }
                            // Let go before complete(): it sets the batch done before anything in it can
                            // surface a throwable (the JVM delivers none while taking a lock), the loading
                            // thread may reuse the batch from then on, and a throwable after must not touch it.
                            LoadBatch done = held;
                            held = null;
                            done.complete();
                            seams.afterBatch();
                        } catch (InterruptedException e) {
                            return;    // close(): the loader is done with its workers
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
     * Takes the stray, a throwable a worker met while it held no batch and no batch has failed with yet
     * (a fault the JVM raised late, after the batch whose read met it completed); null if there is none.
     * The loading thread calls it at the end of a load, once its last batch is done, so that the load fails
     * with it rather than a later one; a stray met after that call is left to the next batch or load.
     */
    Throwable takeStray() {
        return stray.get() == null ? null : stray.getAndSet(null);
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
