package io.samepage.image;

import java.util.concurrent.locks.LockSupport;

/**
 * The batches the loading thread has given its {@link LoadWorkers} and not yet got back: a ring of
 * {@value #PER_WORKER} places per worker, shared by every worker. The loading thread gives batch after batch
 * with increasing tickets ({@link #given} counts them); ticket {@code t} sits in place {@code t % capacity}.
 * Any worker claims the oldest open batch ({@link #claim}), so a batch waits only until some worker is free,
 * never for one worker in particular.
 *
 * <p>A batch in flight stays in its place until it is finished: the loading thread gives ticket {@code t}
 * only once ticket {@code t - capacity}, which it replaces, is finished ({@link #give} refuses otherwise).
 * So a worker finds the batch it holds by looking at the places ({@link #failHeld}), whatever it kept or
 * lost of it on its own stack.
 *
 * <p>{@link #give} and {@link #wakeOne} are called by the loading thread; {@link #given} is written by it
 * alone.
 */
final class Handoff {

    /** Batches in flight per worker: the loading thread runs two batches per worker ahead. */
    static final int PER_WORKER = 2;

    private final LoadBatch[] places;
    private final LoadWorker[] workers;
    private final LoadWorkers.Seams seams;
    /** Tickets given: batches opened and published; written by the loading thread alone. */
    private volatile long given;
    /** The thread to wake when a batch is finished: the one that gave the last batch. */
    private volatile Thread waiter;

    /** The hand-off of {@code workers}, with {@value #PER_WORKER} places each; {@code seams} as theirs. */
    Handoff(LoadWorker[] workers, LoadWorkers.Seams seams) {
        this.workers = workers;
        this.seams = seams;
        this.places = new LoadBatch[PER_WORKER * workers.length];
    }

    /** The test seams of the workers it serves. */
    LoadWorkers.Seams seams() {
        return seams;
    }

    /** Tickets given so far: a worker may claim only a ticket below it. */
    long given() {
        return given;
    }

    /**
     * Gives {@code batch}, of {@code load}, as the next ticket, and wakes an idle worker if there is one;
     * never blocks.
     *
     * @throws IllegalStateException if {@code batch} is in flight, or if the batch it would replace is: more
     *                               batches in flight than the hand-off holds
     */
    void give(LoadBatch batch, LoadRecord load) {
        long t = given;
        int place = (int) (t % places.length);
        LoadBatch replaced = places[place];
        if (!batch.finished()) {
            throw new IllegalStateException("the batch of blocks [" + batch.firstBlock() + ", " + batch.endBlock()
                    + ") is given while it is in flight");
        }
        if (replaced != null && replaced.inFlightAs(t - places.length)) {
            throw new IllegalStateException("more batches in flight than the " + places.length + " the workers hold");
        }
        waiter = Thread.currentThread();
        places[place] = batch;
        batch.open(this, t, load);
        seams.beforePublish();
        given = t + 1;      // publishes the place: a worker that reads it claims the batch from here on
        seams.afterPublish();
        wakeOne();
    }

    /** Wakes one worker waiting for a batch, if any; called by the loading thread. */
    void wakeOne() {
        for (LoadWorker worker : workers) {
            if (worker.wake()) {
                return;
            }
        }
    }

    /**
     * Claims for {@code worker} the oldest open batch it has not looked at yet; null if there is none. The
     * claim is the batch's compare-and-set, which is the worker's only record that it holds the batch: a
     * throwable that surfaces once it succeeded, even before this returns, leaves the batch held by the
     * worker, where {@link #failHeld} finds it.
     */
    LoadBatch claim(LoadWorker worker) {
        long g = given;
        // Tickets below g - capacity are finished: each was replaced in its place by a ticket given.
        long t = Math.max(worker.cursor, g - places.length);
        for (; t < g; t++) {
            LoadBatch batch = places[(int) (t % places.length)];
            if (batch.claim(t, worker.index)) {
                worker.cursor = t + 1;
                return batch;
            }
        }
        worker.cursor = t;
        return null;
    }

    /**
     * Fails whole with {@code thrown} and finishes every batch {@code worker} holds (it claims one at a
     * time, so at most one); returns whether there was one. Called by that worker.
     */
    boolean failHeld(LoadWorker worker, Throwable thrown) {
        boolean held = false;
        for (LoadBatch batch : places) {
            if (batch != null && batch.heldBy(worker.index)) {
                batch.failWhole(thrown);
                batch.finish();
                held = true;
            }
        }
        return held;
    }

    /** Wakes the thread that gave the last batch, if any; an extra wake is harmless ({@link LoadBatch#await} loops). */
    void wakeLoader() {
        LockSupport.unpark(waiter);
    }
}
