package io.samepage.core;

import io.samepage.linux.DiscardList;
import io.samepage.linux.NativeMemory;
import io.samepage.hashing.Pages;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

/**
 * The default {@link FrameBacking}: one {@code mmap} of private anonymous memory with
 * {@code MAP_NORESERVE} (a frame nobody touched costs neither RAM nor commit charge), released with
 * {@code madvise(MADV_DONTNEED)}, several at a time with one {@code process_madvise}
 * ({@link DiscardList}); frame 1 starts a 2 MiB block ({@link #firstBlock}). Where native memory is
 * not {@linkplain NativeMemory#available() available} (not Linux), the region comes from
 * {@link Arena#allocate(long, long)}: committed up front, and a released frame is zeroed in place, so
 * its memory does <em>not</em> go back to the operating system.
 *
 * <p>Thread safety: as {@link FrameBacking} says. {@link #release(int[], int)} takes one of
 * {@value #BATCHES} batch lists, each under its lock, so that the scanner's threads
 * ({@code scan_threads}) give their frees back side by side.
 */
final class AnonymousFrames implements FrameBacking {

    private final Arena arena = Arena.ofShared();
    private final MemorySegment region;
    private final boolean discardsToOs;
    /** Batch lists for concurrent {@link #release(int[], int)} calls. */
    static final int BATCHES = 4;
    /** The batches {@link #release(int[], int)} discards with, each under its lock; null where native memory is not available. */
    private final DiscardList[] discards;
    private final java.util.concurrent.locks.ReentrantLock[] discardLocks;
    private boolean closed;

    AnonymousFrames(int frames) {
        long bytes = (long) frames << Pages.PAGE_SHIFT;
        this.discardsToOs = NativeMemory.available();
        try {
            this.region = discardsToOs ? NativeMemory.reserve(bytes, firstBlock(frames), arena)
                    : arena.allocate(bytes, Pages.PAGE_SIZE);
        } catch (IllegalStateException refused) {
            arena.close();
            if (refused.getCause() != null) {
                throw refused;      // a failed downcall (Libc), not the kernel's errno: a bug, not the host's refusal
            }
            throw new DedupException(DedupException.Kind.HOST_REFUSED, refused.getMessage(), refused);
        } catch (RuntimeException | OutOfMemoryError e) {
            arena.close();
            throw e;
        }
        this.discards = discardsToOs ? new DiscardList[BATCHES] : null;
        this.discardLocks = new java.util.concurrent.locks.ReentrantLock[BATCHES];
        for (int b = 0; b < BATCHES; b++) {
            discardLocks[b] = new java.util.concurrent.locks.ReentrantLock();
            if (discardsToOs) {
                discards[b] = new DiscardList(region, arena);
            }
        }
    }

    /**
     * Where the region's first 2 MiB block starts: at frame 1, the first frame the pool hands out (frame 0
     * is the zero frame, never freed). Frames handed out in address order then fill whole blocks, so a
     * block's worth freed together goes back to the kernel at a fraction of the cost per page
     * ({@link NativeMemory#reserve(long, long, Arena)}).
     */
    private static long firstBlock(int frames) {
        return frames > 1 ? FramePool.offsetOf(1) : 0;
    }

    @Override
    public MemorySegment region() {
        return region;
    }

    @Override
    public boolean releasesMemory() {
        return discardsToOs;
    }

    /**
     * {@code madvise(MADV_POPULATE_WRITE)} over the frames ({@link NativeMemory#populate}): one system
     * call where writing each would take a page fault each, which on this project's machine kind costs
     * 10 to 12 us a page (docs/perf/engine.md#copy-on-write-latency). A refusal leaves the frames to
     * fault in when written.
     */
    @Override
    public void populate(int first, int count) {
        if (discardsToOs && count > 0) {
            NativeMemory.populate(region, FramePool.offsetOf(first), (long) count << Pages.PAGE_SHIFT);
        }
    }

    @Override
    public void release(int frame) {
        long offset = FramePool.offsetOf(frame);
        if (discardsToOs) {
            NativeMemory.discard(region, offset, Pages.PAGE_SIZE);
        } else {
            MemorySegment.copy(region, FramePool.offsetOf(FramePool.ZERO_FRAME), region, offset, Pages.PAGE_SIZE);
        }
    }

    /** One {@code madvise(MADV_DONTNEED)} over the range; where native memory is not available, each is zeroed. */
    @Override
    public void release(int first, int count) {
        if (!discardsToOs) {
            FrameBacking.super.release(first, count);
        } else if (count > 0) {
            NativeMemory.discard(region, FramePool.offsetOf(first), (long) count << Pages.PAGE_SHIFT);
        }
    }

    @Override
    public void release(int[] frames, int count) {
        if (discards == null) {
            for (int i = 0; i < count; i++) {
                release(frames[i]);
            }
            return;
        }
        int b = lockABatch();
        try {
            DiscardList batch = discards[b];
            for (int i = 0; i < count; i++) {
                if (batch.isFull()) {
                    batch.discard();
                }
                batch.add(FramePool.offsetOf(frames[i]), Pages.PAGE_SIZE);
            }
            batch.discard();
        } finally {
            discardLocks[b].unlock();
        }
    }

    /** Takes a free batch list's lock, or waits for the first one's; returns its index. */
    private int lockABatch() {
        for (int b = 0; b < BATCHES; b++) {
            if (discardLocks[b].tryLock()) {
                return b;
            }
        }
        discardLocks[0].lock();
        return 0;
    }

    /** Its objects, its discard lists' buffers most of them ({@link MetadataSizes#anonymousFrames}). */
    @Override
    public long metadataBytes() {
        return MetadataSizes.anonymousFrames(BATCHES, discards != null);
    }

    @Override
    public synchronized void close() {
        if (!closed) {
            closed = true;
            arena.close();
        }
    }
}
