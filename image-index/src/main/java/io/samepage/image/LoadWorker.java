package io.samepage.image;

import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.util.concurrent.locks.LockSupport;

/**
 * One load worker's own state ({@link LoadWorkers}): its number, which its claims write into the batch it
 * holds; how far it has looked through the {@link Handoff}; whether it waits for a batch; and its stray:
 * what it met while holding no batch that nobody has taken yet ({@link #keep}), with the load it belongs
 * to, the load of the last batch the worker began (null before its first). The stray is guarded by this
 * object's lock, since the loading thread takes it; the rest is the worker's but for {@link #wake}.
 */
final class LoadWorker {

    private static final VarHandle WAITING;

    static {
        try {
            WAITING = MethodHandles.lookup().findVarHandle(LoadWorker.class, "waiting", boolean.class);
        } catch (ReflectiveOperationException e) {
            throw new ExceptionInInitializerError(e);
        }
    }

    /** The worker's number, from 0. */
    final int index;
    /** The worker thread, set once before it starts. */
    Thread thread;
    /** The worker's own: tickets below it it has found claimed or claimed itself; only a hint where to look. */
    long cursor;
    /** The worker's own: the load of the batch it began last (or is about to begin); null before its first. */
    LoadRecord lastLoad;
    /** True while the worker is about to wait or waits for a batch: set by it, cleared by it or by {@link #wake}. */
    private volatile boolean waiting;
    private Throwable stray;
    private LoadRecord strayLoad;

    LoadWorker(int index) {
        this.index = index;
    }

    /**
     * Parks the worker unless a ticket it has not looked at was given since it last looked; returns at once
     * if one was, or when woken (or spuriously). The flag is written before the count is read, and the
     * loading thread writes the count before it reads the flag, so one of the two sees the other: a batch
     * given meanwhile is never left with every worker parked.
     */
    void awaitBatch(Handoff handoff, Object blocker) {
        waiting = true;
        if (handoff.given() <= cursor) {
            LockSupport.park(blocker);
        }
        waiting = false;
    }

    /** Clears the flag a throwable may have left set. */
    void stopWaiting() {
        waiting = false;
    }

    /** Wakes the worker if it waits for a batch, and only one caller for each wait; true if this call did. */
    boolean wake() {
        if (waiting && WAITING.compareAndSet(this, true, false)) {
            LockSupport.unpark(thread);
            return true;
        }
        return false;
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

    /** Takes the stray if it is {@code seen} (not null): keeps it no longer; one kept since {@code seen} stays. */
    synchronized void takeSeen(Throwable seen) {
        if (seen != null && stray == seen) {
            stray = null;
            strayLoad = null;
        }
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
}
