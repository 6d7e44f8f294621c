package io.samepage.core;

/**
 * Frames one caller took from the pool ahead of the writes that fill them, populated for it alone
 * ({@link FramePool#allocateForOverwrite(int[], int)} or, out of a reservation,
 * {@link FramePool#allocateReservedForOverwrite(int[], int)}), handed out first to last; those not
 * handed out go back with {@link #giveBack}. An image load's installer ({@link PageInstaller#takeFramesAhead})
 * and a large guest write's reservation ({@link WriteReservation}) keep one each. Their bytes are unspecified.
 *
 * <p>Confined to one thread; allocates nothing after construction.
 */
final class FramesAhead {

    private final int[] frames;
    /** {@code frames[next..end)} are not handed out yet. */
    private int next;
    private int end;
    /** Frames taken from the pool since this was made. */
    private int taken;

    /** Room for {@code capacity} frames at a time. */
    FramesAhead(int capacity) {
        this.frames = new int[capacity];
    }

    int capacity() {
        return frames.length;
    }

    /** True if every frame taken was handed out (or none was taken). */
    boolean isEmpty() {
        return next == end;
    }

    /** The next frame; only when not {@linkplain #isEmpty() empty}. */
    int take() {
        return frames[next++];
    }

    /** Frames taken from the pool since this was made, handed out or not. */
    int taken() {
        return taken;
    }

    /**
     * Takes {@code count} frames (at most {@link #capacity()}), all or nothing; call when empty.
     *
     * @return false, with nothing taken, if the pool cannot spare that many
     */
    boolean allocate(FramePool pool, int count) {
        if (!pool.allocateForOverwrite(frames, count)) {
            return false;
        }
        took(count);
        return true;
    }

    /** Takes {@code count} frames (at most {@link #capacity()}) out of the caller's reservation; call when empty. */
    void allocateReserved(FramePool pool, int count) {
        pool.allocateReservedForOverwrite(frames, count);
        took(count);
    }

    private void took(int count) {
        next = 0;
        end = count;
        taken += count;
    }

    /** Gives the frames not handed out back to the pool; empty afterwards. */
    void giveBack(FramePool pool) {
        int from = next;
        int left = end - next;
        next = 0;
        end = 0;
        if (left > 0) {
            System.arraycopy(frames, from, frames, 0, left);
            pool.freeAll(frames, left);
        }
    }
}
