package io.samepage.kvm;

import io.samepage.core.FrameBacking;
import java.lang.foreign.MemorySegment;

/**
 * The engine's frame pool in a memfd ({@link MemfdFrames}): the region is the frame window, and a
 * released frame is punched out of the file ({@code fallocate(PUNCH_HOLE)}), which frees its memory for
 * the window and every guest page still mapping it. {@code madvise(MADV_DONTNEED)}, the anonymous
 * backing's release, would only drop this process's page table entries of a shared file mapping: the
 * file would keep its pages. Package-private because {@link FrameBacking#region()} is an FFM segment;
 * {@link MappedGuest#memfdBacking} hands it to the engine.
 *
 * <p>Thread safety: as {@link FrameBacking} requires; every method is safe from any thread.
 */
final class MemfdBacking implements FrameBacking {

    private final MemfdFrames frames;

    MemfdBacking(MemfdFrames frames) {
        this.frames = frames;
    }

    MemfdFrames frames() {
        return frames;
    }

    @Override
    public MemorySegment region() {
        return frames.window();
    }

    @Override
    public boolean releasesMemory() {
        return true;
    }

    @Override
    public void release(int frame) {
        frames.release(frame);
    }

    /** Punches the run with one {@code fallocate}. */
    @Override
    public void release(int first, int count) {
        if (count > 0) {
            frames.releaseRun(first, count);
        }
    }

    /** Punches each run of consecutive frames with one {@code fallocate}. */
    @Override
    public void release(int[] list, int count) {
        int i = 0;
        while (i < count) {
            int first = list[i];
            int run = 1;
            while (i + run < count && list[i + run] == first + run) {
                run++;
            }
            frames.releaseRun(first, run);
            i += run;
        }
    }

    @Override
    public void close() {
        frames.close();
    }
}
