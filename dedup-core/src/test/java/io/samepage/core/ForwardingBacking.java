package io.samepage.core;

import java.lang.foreign.MemorySegment;

/**
 * A {@link FrameBacking} that passes every call to another, the anonymous default unless given one:
 * tests override the calls they watch, delay or make fail.
 */
public class ForwardingBacking implements FrameBacking {

    private final FrameBacking inner;

    public ForwardingBacking(FrameBacking inner) {
        this.inner = inner;
    }

    /** Forwards to the anonymous default backing of {@code frames} frames. */
    public ForwardingBacking(int frames) {
        this(FrameBacking.anonymous().create(frames));
    }

    /** Anonymous backings whose populate throws on every call, as a kernel without it or out of memory would. */
    static FrameBacking.Factory failingPopulate() {
        return frames -> new ForwardingBacking(frames) {
            @Override
            public void populate(int first, int count) {
                throw new IllegalStateException("madvise(MADV_POPULATE_WRITE) failed with errno 12 (injected)");
            }
        };
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
    public void populate(int first, int count) {
        inner.populate(first, count);
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
    public long metadataBytes() {
        return inner.metadataBytes();
    }

    @Override
    public void close() {
        inner.close();
    }
}
