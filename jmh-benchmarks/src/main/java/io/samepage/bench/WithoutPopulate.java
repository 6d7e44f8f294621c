package io.samepage.bench;

import io.samepage.core.FrameBacking;
import java.lang.foreign.MemorySegment;

/**
 * A backing that passes every call to {@code inner} but {@link FrameBacking#populate}, which it leaves to
 * the interface's default (nothing): the reference of the benchmarks that show what populating saves.
 */
record WithoutPopulate(FrameBacking inner) implements FrameBacking {

    /** The anonymous default backing, without populate. */
    static FrameBacking.Factory anonymous() {
        FrameBacking.Factory anonymous = FrameBacking.anonymous();
        return frames -> new WithoutPopulate(anonymous.create(frames));
    }

    @Override
    public MemorySegment region() {
        return inner.region();
    }

    @Override
    public boolean releasesMemory() {
        return inner.releasesMemory();
    }

    @Override
    public void release(int frame) {
        inner.release(frame);
    }

    @Override
    public void release(int[] frames, int count) {
        inner.release(frames, count);
    }

    @Override
    public void close() {
        inner.close();
    }
}
