package io.samepage.image;

import io.samepage.core.DedupEngine;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.BlockingQueue;

/**
 * The worker threads of one {@link ImageLoader}: each takes the next {@link LoadBatch} from a queue,
 * resolves it with its own {@link BatchResolver} (its own installer, open files and read buffer), and
 * completes it. Daemon threads named {@value #THREAD_NAME}-N, started with the loader and stopped by
 * {@link #close()}, which returns once every one of them has ended.
 *
 * <p>{@link #submit} is called by the loading thread only.
 */
final class LoadWorkers implements AutoCloseable {

    /** The worker threads' name, followed by {@code -N}. */
    static final String THREAD_NAME = "samepage-image-load";

    private final BlockingQueue<LoadBatch> queue;
    private final Thread[] threads;

    /** {@code count} workers; {@code capacity}: the most batches the loading thread has in flight. */
    LoadWorkers(ImageIndex index, DedupEngine engine, int count, int capacity) {
        this(index, engine, count, new ArrayBlockingQueue<>(capacity));
    }

    /**
     * {@code count} workers that take their batches from {@code queue}, which must hold every batch the
     * loading thread has in flight. A parameter so that a test can make taking a batch throw, as a fault
     * the JVM raises late does when it surfaces while a worker waits for its next batch.
     */
    LoadWorkers(ImageIndex index, DedupEngine engine, int count, BlockingQueue<LoadBatch> queue) {
        this.queue = queue;
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
     * for ever. Something thrown outside any batch (a fault the JVM raised late) fails the next batch this
     * worker takes, so that a load reports it.
     */
    private void run(BatchResolver resolver) {
        try (resolver) {
            Throwable stray = null;
            while (true) {
                LoadBatch batch = null;
                try {
                    batch = queue.take();
                    if (stray != null) {
                        batch.failWhole(stray);
                        stray = null;
                    } else {
                        resolver.resolve(batch);
                    }
                } catch (InterruptedException e) {
                    return;    // close(): the loader is done with its workers
                } catch (Throwable e) {
                    if (batch == null) {
                        stray = e;
                    } else {
                        batch.failWhole(e);
                    }
                } finally {
                    if (batch != null) {
                        batch.complete();
                    }
                }
            }
        }
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
