package io.samepage.core;

import java.lang.foreign.MemorySegment;

/**
 * Where a {@link FramePool}'s frames live, and how a freed frame's memory goes back: the one thing
 * that differs between the two ways guest memory is held.
 *
 * <p>The default, {@link #anonymous()}, is private anonymous memory: the software page table's frames,
 * given back with {@code madvise(MADV_DONTNEED)}. Mapped guest memory (module kvm-integration) backs
 * the pool with a memfd instead, whose frames guests map directly and which gives memory back with
 * {@code fallocate(PUNCH_HOLE)}: {@code MADV_DONTNEED} on a shared file mapping drops this process's
 * page table entries but not the file's pages, so it would free nothing.
 *
 * <p>Contract: {@link #region()} is {@code frames * 4096} bytes, 4 KiB aligned, and reads as zeros
 * where nothing was written; a released frame reads as zeros afterwards, through the region and any
 * other view of it. The pool never releases a frame that something still reads or writes.
 *
 * <p>Thread safety: {@link #region()}, {@link #populate}, {@link #release(int)} and
 * {@link #release(int[], int)} are safe from any thread (the scanner's threads free side by side);
 * {@link #close()} must not race with any other use.
 */
public interface FrameBacking extends AutoCloseable {

    /** Makes the backing of a pool of {@code frames} frames. */
    @FunctionalInterface
    interface Factory {
        /**
         * @throws RuntimeException if the memory cannot be had; the pool is not created
         */
        FrameBacking create(int frames);
    }

    /** Private anonymous memory (on Linux with {@code MAP_NORESERVE}), the default. */
    static Factory anonymous() {
        return AnonymousFrames::new;
    }

    /** All frames: frame {@code f} is the 4096 bytes at {@link FramePool#offsetOf(int) f * 4096}. */
    MemorySegment region();

    /**
     * True if {@link #release} gives memory back to the operating system, so that a released frame costs
     * a page fault when it is next written; false if it only zeroes the frame in place. The pool keeps
     * a list of resident freed frames ({@link FramePool#replenishWarm}) only where this is true.
     */
    boolean releasesMemory();

    /**
     * Backs frames {@code [first, first + count)} with memory now, in as few system calls as the backing
     * can, so that writing them costs no page fault each: a hint for {@link FramePool#replenishWarm},
     * which writes each frame afterwards anyway. Their bytes do not change. A backing that cannot, or
     * whose call fails, does nothing; the default does nothing.
     */
    default void populate(int first, int count) {
    }

    /** Releases one frame: afterwards it reads as zeros. */
    void release(int frame);

    /** Releases {@code frames[0..count)}, with as few system calls as the backing can. */
    void release(int[] frames, int count);

    /**
     * Releases the frames {@code [first, first + count)}, with as few system calls as the backing can
     * (one, for a range); the default releases each with {@link #release(int)}.
     */
    default void release(int first, int count) {
        for (int frame = first; frame < first + count; frame++) {
            release(frame);
        }
    }

    /**
     * Bytes of Java heap this backing's own objects take (its buffers and locks, not the region), for
     * {@link FramePool#metadataBytes}; the default counts none. Thread safe.
     */
    default long metadataBytes() {
        return 0;
    }

    /** Gives all the memory back; afterwards every access to {@link #region()} throws. Idempotent. */
    @Override
    void close();
}
