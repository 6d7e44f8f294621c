package io.samepage.core;

import java.util.concurrent.atomic.AtomicLong;

/**
 * A {@link FramePool}'s accounting of frames that are free and nobody reserved ("available") and
 * frames reserved but not yet taken. Both share one {@link AtomicLong} (32 bits each), so both change
 * in a single CAS and {@code inUse + available + reserved == total} holds in every snapshot.
 *
 * <p>Thread safety: every method is safe from any thread, lock free.
 */
final class FrameReservation {

    private static final long RESERVED_UNIT = 1L << 32;
    private static final long AVAILABLE_MASK = RESERVED_UNIT - 1;

    /** High 32 bits: reserved frames not yet taken. Low 32 bits: free frames nobody reserved. */
    private final AtomicLong state;

    FrameReservation(int available) {
        state = new AtomicLong(available);
    }

    /** Moves {@code frames} from available to reserved, all or nothing; false if fewer are available. */
    boolean tryReserve(int frames) {
        if (frames < 0) {
            throw new IllegalArgumentException("cannot reserve " + frames + " frames: must be >= 0");
        }
        long s;
        do {
            s = state.get();
            if (available(s) < frames) {
                return false;
            }
        } while (!state.compareAndSet(s, s - frames + frames * RESERVED_UNIT));
        return true;
    }

    /** Moves {@code frames} from reserved back to available. */
    void unreserve(int frames) {
        if (frames < 0) {
            throw new IllegalArgumentException("cannot unreserve " + frames + " frames: must be >= 0");
        }
        long s;
        do {
            s = state.get();
            if (reserved(s) < frames) {
                throw new IllegalStateException("cannot unreserve " + frames + " frames: only " + reserved(s)
                        + " are reserved");
            }
        } while (!state.compareAndSet(s, s + frames - frames * RESERVED_UNIT));
    }

    /** Moves {@code frames} from reserved to in use (taken). */
    void take(int frames) {
        long s;
        do {
            s = state.get();
            if (reserved(s) < frames) {
                throw new IllegalStateException("allocateReserved() without a reservation: call tryReserve(n) "
                        + "first and take at most n frames");
            }
        } while (!state.compareAndSet(s, s - frames * RESERVED_UNIT));
    }

    /** Moves {@code frames} from in use back to reserved: a {@link #take} whose frames the taker never got. */
    void untake(int frames) {
        state.getAndAdd(frames * RESERVED_UNIT);
    }

    /** Moves {@code frames} from in use to available: they were freed. */
    void release(int frames) {
        state.getAndAdd(frames);
    }

    int available() {
        return available(state.get());
    }

    /** Frames in use out of {@code total}, from one consistent snapshot. */
    int inUse(int total) {
        long s = state.get();
        return total - available(s) - reserved(s);
    }

    private static int available(long s) {
        return (int) (s & AVAILABLE_MASK);
    }

    private static int reserved(long s) {
        return (int) (s >>> 32);
    }
}
