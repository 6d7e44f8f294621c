package io.samepage.core;

import java.util.BitSet;

/**
 * Anonymous frame backings ({@link ForwardingBacking}) that record every {@link FrameBacking#populate}
 * call they receive: how many calls, which frames they named, and how many frames in all (a frame asked
 * for twice counts twice). Thread safe: pools populate from several threads.
 */
public final class PopulateRecording {

    private final BitSet frames = new BitSet();
    private int calls;
    private long framesAsked;

    /** Backings that record here, then populate as the anonymous default does. */
    public FrameBacking.Factory factory() {
        return n -> new ForwardingBacking(n) {
            @Override
            public void populate(int first, int count) {
                record(first, count);
                super.populate(first, count);
            }
        };
    }

    private synchronized void record(int first, int count) {
        calls++;
        framesAsked += count;
        frames.set(first, first + count);
    }

    /** Populate calls since made or {@linkplain #clear() cleared}. */
    public synchronized int calls() {
        return calls;
    }

    /** Every frame a call named (a copy). */
    public synchronized BitSet frames() {
        return (BitSet) frames.clone();
    }

    /** Frames the calls named, summed over the calls. */
    public synchronized long framesAsked() {
        return framesAsked;
    }

    /** Forgets every call so far. */
    public synchronized void clear() {
        calls = 0;
        framesAsked = 0;
        frames.clear();
    }
}
