package io.samepage.core;

import io.samepage.linux.DiscardList;

/**
 * The frames the scanner frees during one batch, handed to {@link FramePool#freeAll} together so that
 * they go back to the operating system with one system call instead of one {@code madvise} each (see
 * {@link DiscardList} for the measurement).
 *
 * <p>A frame waits here until {@value #CAPACITY} have gathered or the batch ends ({@link #flush}).
 * While it waits it counts as in use, and nothing can reach it: no page maps it and no index names it.
 *
 * <p>Thread safety: one thread at a time: its visitor's, which flushes it at the end of its part of
 * a batch, or the scanner's between batches. Allocates nothing after construction.
 */
final class FreedFrames {

    /**
     * 16 MiB, a full scan batch's worth ({@link Scanner#FULL_PASS_BATCH_PAGES}): bounds how long a frame
     * waits, and how many frames a writer may briefly miss. The pool hands them to the operating system
     * {@link DiscardList#CAPACITY} ranges a call, adjacent frames in one range.
     */
    static final int CAPACITY = 4 * DiscardList.CAPACITY;

    private final FramePool pool;
    private final int[] frames = new int[CAPACITY];
    private int count;

    FreedFrames(FramePool pool) {
        this.pool = pool;
    }

    /** Frees {@code frame}, now or with the others. The caller holds no other reference to it. */
    void add(int frame) {
        frames[count++] = frame;
        if (count == CAPACITY) {
            flush();
        }
    }

    /** Frees the waiting frames, if any. */
    void flush() {
        if (count > 0) {
            int n = count;
            count = 0;
            pool.freeAll(frames, n);
        }
    }
}
