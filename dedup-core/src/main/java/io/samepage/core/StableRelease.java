package io.samepage.core;

import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.ReentrantLock;
import java.util.function.IntConsumer;

/**
 * The release of one mapping of a domain's stable frame ({@link MergeDomain#releaseStable}) and, for the
 * last one, the frame's removal and free, done in steps that a release cut short finishes from where it
 * was cut.
 *
 * <p><b>The steps of a last release.</b> Once its last mapping is dropped the frame is the release's alone.
 * It then leaves the stable index ({@link #DROPPED} before, {@link #UNFILING} after), leaves
 * {@code pages_shared} ({@link #UNCOUNTED} after), leaves the resident registry and the domain's lock is
 * released ({@link #UNFILED} after), and is freed ({@link #FREED} after). Each step is one change, and the
 * release notes that it is made as soon as the change returns, with no call in between, so whatever is
 * thrown (a StackOverflowError, an InternalError from a frame whose memory faults, a bug's exception) leaves
 * the step noted at the first change not known to be made.
 *
 * <p><b>Finishing.</b> What stopped a release passes on only once the release is finished from its step
 * ({@link #finish}), each remaining change first asking whether it is still to do: the index takes the frame
 * out only if it still holds it, the registry only if it still names it, and the free is made only if the
 * frame's refcount is still 0 (only the free changes it, as nobody else holds the frame), so a free that
 * began is never made twice. {@code pages_shared} drops exactly once, as its step is exact. So the index,
 * {@code pages_shared}, the registry and the pool agree again, and the frame ends free, never filed while
 * free. Before, a release cut short while the frame left the index withheld it and left {@code pages_shared}
 * and the registry as the cut left them. The release of a full frame's mapping cut short before the drop
 * ({@link #MAPPED}: only a StackOverflowError can strike there, at the lock) is made again from the start;
 * before, the frame kept that mapping's count for good.
 *
 * <p><b>Cut short again.</b> The finishing runs in the catch of the release, at about the depth the release
 * ran, so a StackOverflowError may strike it too. A removal it cannot complete is then owed ({@link #owe}):
 * the domain's next release of a last or full mapping, under the lock, finishes it first ({@link
 * #settleOwed}), from a stack the cut has unwound, so the index, {@code pages_shared} and the registry agree
 * again then, and the frame is freed. Meanwhile nothing maps it (a refcount of 0 is never taken), though the
 * index and {@code pages_shared} may still count it. One removal is owed at a time; a second one's frame is
 * withheld ({@link FramePool#withhold}), in use for good and counted, as is a frame whose removal is complete
 * and whose free could not begin: never freed while the index or the registry may still name it, since a
 * frame reused then would let a merge map one guest's page onto another's bytes. A free that began is the
 * pool's to end. A throw inside one change (a StackOverflowError deep in the index's removal, a fault reading
 * the frame while the index counts its content's frames) may leave that part as it struck it; finishing
 * still ends the frame out of the index and free. A release whose frame the index does not hold (a bug)
 * withholds it and changes no counter.
 *
 * <p>Thread safety: safe from any thread; the domain's lock guards the index, the registry and
 * {@code pages_shared}, and a last release holds it from {@link #DROPPED} to {@link #UNFILED}. A removal
 * may be owed from a thread that could not take the lock, hence the CAS on {@link #owed}.
 */
final class StableRelease {

    /** A step of a stable frame's last release: its last mapping dropped, the frame still filed. */
    static final int DROPPED = 0;
    /** A step of a stable frame's last release: out of the stable index, {@code pages_shared} and the registry not yet. */
    static final int UNFILING = 1;
    /** A step of a stable frame's last release: out of the stable index and {@code pages_shared}, the registry not yet. */
    static final int UNCOUNTED = 2;
    /** A step of a stable frame's last release: out of the index, its count and the registry, not yet free. */
    static final int UNFILED = 3;
    /** A step of a stable frame's last release: free. */
    static final int FREED = 4;
    /** A step of the release of a full frame's mapping: the lock taken, the mapping not yet dropped. */
    static final int MAPPED = -1;
    /** Where a release of a full frame is once its mapping is dropped and others remain: nothing to finish. */
    private static final int STILL_MAPPED = -2;
    /** Where a last release is whose frame the index did not hold: how it got there is unknown. */
    private static final int ASTRAY = -3;
    private static final IntConsumer NO_STEPS = step -> { };
    private static final long NONE = -1;
    private static final VarHandle OWED;

    static {
        try {
            OWED = MethodHandles.lookup().findVarHandle(StableRelease.class, "owed", long.class);
        } catch (ReflectiveOperationException e) {
            throw new ExceptionInInitializerError(e);
        }
    }

    private final String domain;
    private final ReentrantLock lock;
    private final StableIndex stable;
    private final ResidentRegistry registry;
    private final FramePool pool;
    private final AtomicLong pagesShared;
    private final AtomicLong pagesSharing;
    /** Told each step of a frame's last release: nothing, but a test's fault injection. */
    private volatile IntConsumer steps = NO_STEPS;
    /** A removal cut short twice ({@link #owe}): its frame in the high half, its step in the low; else NONE. */
    private volatile long owed = NONE;

    StableRelease(String domain, ReentrantLock lock, StableIndex stable, ResidentRegistry registry, FramePool pool,
            AtomicLong pagesShared, AtomicLong pagesSharing) {
        this.domain = domain;
        this.lock = lock;
        this.stable = stable;
        this.registry = registry;
        this.pool = pool;
        this.pagesShared = pagesShared;
        this.pagesSharing = pagesSharing;
    }

    /**
     * Drops one mapping of stable {@code frame} ({@link MergeDomain#releaseStable}); the last one takes it
     * out of the index, {@code pages_shared} and the registry, and frees it. A throw part way passes on once
     * the release is finished ({@link #finish}).
     */
    void release(int frame, int maxSharing) {
        FrameTable table = pool.table();
        int left = table.tryDecrementRefBelow(frame, maxSharing);
        if (left > 0) {
            pagesSharing.decrementAndGet();
            return;
        }
        IntConsumer hook = steps;        // one volatile read, on the path of a last or full mapping only
        int step = left == 0 ? DROPPED : MAPPED;
        boolean locked = false;
        try {
            lock.lock();
            locked = true;
            settleOwed(maxSharing, hook);
            // Our mapping of a full frame keeps it filed until now, and its removal waits for this lock.
            if (step == MAPPED) {
                hook.accept(MAPPED);
                step = table.decrementRef(frame) > 0 ? STILL_MAPPED : DROPPED;
                if (step == STILL_MAPPED) {
                    stable.noteRoom(frame);
                    pagesSharing.decrementAndGet();
                    return;
                }
            }
            hook.accept(DROPPED);
            step = stable.remove(frame) ? UNFILING : ASTRAY;
            if (step == ASTRAY) {
                throw new IllegalStateException("frame " + frame + " is not in the stable index of domain " + domain);
            }
            hook.accept(UNFILING);
            pagesShared.decrementAndGet();
            step = UNCOUNTED;
            hook.accept(UNCOUNTED);
            registry.unregister(frame);
            step = UNFILED;
            locked = false;
            lock.unlock();
            hook.accept(UNFILED);
            pool.free(frame);
            step = FREED;
            hook.accept(FREED);
        } catch (RuntimeException | Error e) {
            finish(frame, step, maxSharing, hook);
            throw e;
        } finally {
            if (locked) {
                lock.unlock();
            }
        }
    }

    /**
     * Finishes the release of {@code frame} that threw at {@code step} ("Finishing" above), telling {@code
     * hook} each step it is at before it acts: from {@link #MAPPED} the release is made again; from {@link
     * #DROPPED}, {@link #UNFILING} or {@link #UNCOUNTED} the removal's remaining changes are made, each only
     * if still to do, then the free; from {@link #UNFILED} the free, if it has not begun. Cut short again, a
     * removal not complete is owed to the domain's next last release ({@link #owe}), else the frame is
     * withheld, unless its free began. Throws nothing: the caller throws what stopped the release.
     */
    private void finish(int frame, int step, int maxSharing, IntConsumer hook) {
        if (step == MAPPED) {
            try {
                release(frame, maxSharing);
            } catch (RuntimeException | Error again) {
                // What stopped the release is the one thrown; this one, after it, says less.
            }
            return;
        }
        try {
            if (step >= DROPPED && step < UNFILED) {
                lock.lock();
                try {
                    hook.accept(step);
                    if (step == DROPPED) {
                        stable.remove(frame);       // false if it is no longer filed: the cut struck after that
                        step = UNFILING;
                        hook.accept(step);
                    }
                    if (step == UNFILING) {
                        pagesShared.decrementAndGet();
                        step = UNCOUNTED;
                        hook.accept(step);
                    }
                    registry.unregister(frame);     // nothing if it is no longer registered
                    step = UNFILED;
                } finally {
                    lock.unlock();
                }
            }
            if (step == UNFILED) {
                hook.accept(step);
                if (pool.table().refCount(frame) == 0) {    // else its free began: a fault zeroing it withheld it
                    pool.free(frame);
                }
                step = FREED;
            }
        } catch (RuntimeException | Error again) {
            // What stopped the release is the one thrown; this one, after it, says less.
        }
        if (step >= DROPPED && step < UNFILED && owe(frame, step)) {
            return;
        }
        if (step != FREED && step != STILL_MAPPED && pool.table().refCount(frame) == 0) {
            pool.withhold(frame);
        }
    }

    /**
     * Leaves the removal of {@code frame}, cut short twice at {@code step}, to the domain's next release of a
     * last or full mapping ({@link #settleOwed}), which runs once this one has unwound: its frame stays out of
     * every lookup's reach meanwhile (a refcount of 0 is never taken), the index and its counts may still
     * hold it. False if another removal is owed already (or the record itself is cut short).
     */
    private boolean owe(int frame, int step) {
        try {
            return OWED.compareAndSet(this, NONE, (long) frame << 32 | step);
        } catch (RuntimeException | Error again) {
            return false;
        }
    }

    /** Finishes the removal owed ({@link #owe}), if any, telling {@code hook} its steps. Caller holds the lock. */
    private void settleOwed(int maxSharing, IntConsumer hook) {
        long owing = owed;
        if (owing != NONE && OWED.compareAndSet(this, owing, NONE)) {
            finish((int) (owing >>> 32), (int) owing, maxSharing, hook);
        }
    }

    /**
     * Takes {@code frame} out of the stable index, {@code pages_shared} and the registry, with no free
     * ({@link MergeDomain#removeStable}). Caller holds the lock.
     */
    void unfile(int frame) {
        if (!stable.remove(frame)) {
            throw new IllegalStateException("frame " + frame + " is not in the stable index of domain " + domain);
        }
        pagesShared.decrementAndGet();
        registry.unregister(frame);
    }

    /**
     * Tells {@code hook} from now on each step a release of a last or full mapping, or its finishing, reaches
     * ({@link MergeDomain#duringStableRelease}). For tests.
     */
    void duringRelease(IntConsumer hook) {
        steps = hook;
    }
}
