package io.samepage.image;

import java.util.concurrent.locks.LockSupport;

/**
 * One load worker's hand-off ({@link LoadWorkers}): the batches the loading thread has given the worker,
 * in {@value #PLACES} places, and how far the worker has got with them. Batch number {@code n} (counted
 * from 0 over the worker's life) is in place {@code n % PLACES}; the worker has been given {@link #given}
 * batches and has finished {@link #finished}, so it holds batches {@code [finished, given)}, in order.
 *
 * <p>Each count has a single writer: the loading thread raises {@code given}, the worker raises
 * {@code finished}. The loading thread fills a place only while the worker holds fewer than
 * {@value #PLACES} batches, so never a place the worker still reads; and it writes the place before it
 * raises {@code given}, which publishes it. Each place holds the batch and the load it belongs to.
 *
 * <p>The hand-off also keeps the worker's stray: what it met while holding no batch that nobody has taken
 * yet ({@link #keep}), with the load it belongs to, the load of the last batch the worker began (null
 * before its first). Guarded by the hand-off's lock, since the loading thread takes it.
 */
final class Handoff {

    /** The most batches a worker holds at once: the loading thread runs two batches per worker ahead. */
    static final int PLACES = 2;

    private final LoadBatch[] places = new LoadBatch[PLACES];
    private final LoadRecord[] loads = new LoadRecord[PLACES];
    /** Batches the loading thread has given the worker; written by the loading thread alone. */
    volatile long given;
    /**
     * Batches the worker has finished; written by the worker alone, one batch at a time, and only once it
     * is done with the batch: the loading thread may reuse it from then on.
     */
    volatile long finished;
    /** The thread to wake when a batch is finished: the one that gave the last batch. */
    private volatile Thread waiter;
    /** The worker's own: batches it has begun, {@link #finished} or one more. Read and written by it alone. */
    long begun;
    /** The worker's own: the load of the batch it began last (or is about to begin); null before its first. */
    LoadRecord lastLoad;
    private Throwable stray;
    private LoadRecord strayLoad;
    /** The worker thread, set once before it starts. */
    Thread worker;

    /** Whether the worker holds fewer than {@value #PLACES} batches, so that it can be given one. */
    boolean hasRoom() {
        return given - finished < PLACES;
    }

    /** Whether the worker holds no batch. */
    boolean idle() {
        return given == finished;
    }

    /**
     * Gives the worker {@code batch}, of {@code load}, and wakes it; called by the loading thread, and only
     * if {@link #hasRoom}. The batch learns its number before the worker can see it, so that
     * {@link LoadBatch#await} knows, wherever a throwable interrupts this, whether it was given.
     */
    void give(LoadBatch batch, LoadRecord load) {
        long n = given;
        places[(int) (n % PLACES)] = batch;
        loads[(int) (n % PLACES)] = load;
        batch.givenAs(this, n);
        waiter = Thread.currentThread();
        given = n + 1;
        LockSupport.unpark(worker);
    }

    /** Batch number {@code n}, which the worker holds. */
    LoadBatch batch(long n) {
        return places[(int) (n % PLACES)];
    }

    /** The load batch number {@code n} belongs to. */
    LoadRecord load(long n) {
        return loads[(int) (n % PLACES)];
    }

    /**
     * Keeps {@code thrown}, which the worker met while it held no batch, as its stray, of {@link #lastLoad};
     * called by the worker. If it keeps one already, the two are kept as one: the one of the later load,
     * with the other added as suppressed (the stray of the load now running must not hide under one of an
     * earlier load, which only says more about a load that has ended).
     */
    synchronized void keep(Throwable thrown) {
        if (stray == null) {
            strayLoad = lastLoad;
            stray = thrown;
        } else if (stray != thrown) {
            if (strayLoad == lastLoad) {
                stray.addSuppressed(thrown);
            } else {
                thrown.addSuppressed(stray);
                strayLoad = lastLoad;
                stray = thrown;
            }
        }
    }

    /** The stray, if it belongs to {@code load}; null if there is none or it belongs to another load. */
    synchronized Throwable strayOf(LoadRecord load) {
        return stray != null && strayLoad == load ? stray : null;
    }

    /** The load the stray belongs to; null if there is none or it belongs to none. */
    synchronized LoadRecord strayLoad() {
        return stray == null ? null : strayLoad;
    }

    /** Takes the stray if it belongs to {@code load}: returns it and keeps it no longer; else returns null. */
    synchronized Throwable takeStray(LoadRecord load) {
        Throwable taken = strayOf(load);
        if (taken != null) {
            stray = null;
            strayLoad = null;
        }
        return taken;
    }

    /** Finishes batch number {@code n}, which the worker holds and began; called by the worker. */
    void finish(long n) {
        finished = n + 1;
        wake();
    }

    /** Wakes the thread that gave the last batch, if any; an extra wake is harmless ({@link LoadBatch#await} loops). */
    void wake() {
        LockSupport.unpark(waiter);
    }
}
