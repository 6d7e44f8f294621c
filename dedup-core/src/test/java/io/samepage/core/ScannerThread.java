package io.samepage.core;

import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicReference;
import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.ReentrantLock;

/**
 * A scanner on a thread of its own for the randomized tests: it scans batches of a few pages until
 * closed, each batch under a fair turn lock that the test's thread takes ({@link #whileHeld}) to check
 * a quiescent engine between two batches. Each hold first waits for a batch the scanner finished after
 * the last hold, so the scanner keeps up with the test's steps however the threads are scheduled: a
 * run's "it merged" check does not depend on the machine's load. A merge the host refuses
 * ({@code HOST_REFUSED}) is allowed;
 * any other failure ends the thread, and {@link #failure()} reports it. Made with {@code on == false}
 * it starts no thread: {@link #whileHeld} just runs the check, so a test can run with or without it.
 */
public final class ScannerThread implements AutoCloseable {

    private final ReentrantLock turn = new ReentrantLock(true);
    /** Signalled, under {@link #turn}, each time the scanner ends a batch or stops. */
    private final Condition batchEnded = turn.newCondition();
    /** Batches the scanner has ended; read and written under {@link #turn}. */
    private long batches;
    /** {@link #batches} at the last hold's start; the test's thread's own. */
    private long batchesAtLastHold;
    private final AtomicBoolean stop = new AtomicBoolean();
    private final AtomicReference<Throwable> failed = new AtomicReference<>();
    private final DedupEngine engine;
    private final int budget;
    private final Thread thread;

    private ScannerThread(DedupEngine engine, int budget, boolean on) {
        this.engine = engine;
        this.budget = budget;
        this.thread = on ? Thread.ofPlatform().start(this::scan) : null;
    }

    /** Starts scanning batches of {@code budget} pages if {@code on}; otherwise does nothing until closed. */
    public static ScannerThread startIf(boolean on, DedupEngine engine, int budget) {
        return new ScannerThread(engine, budget, on);
    }

    private void scan() {
        while (!stop.get()) {
            turn.lock();
            try {
                engine.scanner().scanBatch(budget);
            } catch (DedupException e) {
                if (e.kind() != DedupException.Kind.HOST_REFUSED) {
                    failed.set(e);
                    return;
                }
            } catch (Throwable t) {
                failed.set(t);
                return;
            } finally {
                batches++;
                batchEnded.signalAll();
                turn.unlock();
            }
        }
    }

    /**
     * Runs {@code check} while the scanner waits between two batches, after it has ended at least one
     * batch since the last call (unless it has failed).
     */
    public void whileHeld(Runnable check) {
        turn.lock();
        try {
            while (thread != null && batches == batchesAtLastHold && failed.get() == null) {
                awaitBatch();
            }
            batchesAtLastHold = batches;
            check.run();
        } finally {
            turn.unlock();
        }
    }

    private void awaitBatch() {
        try {
            if (!batchEnded.await(10, TimeUnit.SECONDS) && batches == batchesAtLastHold) {
                throw new AssertionError("the scanner thread ended no batch in 10 s");
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new AssertionError("interrupted while waiting for the scanner's next batch", e);
        }
    }

    /** What ended the scanner thread, or null while it runs (or if there is none). */
    public Throwable failure() {
        return failed.get();
    }

    /** Stops the thread and waits for it to end. */
    @Override
    public void close() throws InterruptedException {
        stop.set(true);
        if (thread != null) {
            thread.join();
        }
    }
}
