package io.samepage.core;

/**
 * Frames gathered into runs of neighbours, so that a {@link FrameBacking} populates each run with one
 * {@link FrameBacking#populate} call instead of a page fault per frame. A frame added right after the
 * last run's end or right before its start extends it (frames freed one by one lie on a free list
 * highest first, so a list walk meets them descending); any other frame starts a new run, up to
 * {@link #capacity()} runs. The one place this rule lives: the warm-list refill and the bulk
 * allocations ({@link FramePopulation}) build their runs here.
 *
 * <p>Confined to one thread; reusable ({@link #clear()}); allocates nothing after construction.
 */
final class FrameRuns {

    /** Run {@code i} starts at frame {@code runs[2i]} and is {@code runs[2i + 1]} frames long. */
    private final int[] runs;
    private int count;

    /** Room for {@code capacity} runs, at least 1. */
    FrameRuns(int capacity) {
        if (capacity < 1) {
            throw new IllegalArgumentException("room for at least one run is needed, not " + capacity);
        }
        this.runs = new int[2 * capacity];
    }

    /** The most runs this holds. */
    int capacity() {
        return runs.length / 2;
    }

    /** The runs gathered so far. */
    int count() {
        return count;
    }

    /** The first frame of run {@code i}, the lowest. */
    int first(int i) {
        return runs[2 * i];
    }

    /** How many frames run {@code i} holds. */
    int length(int i) {
        return runs[2 * i + 1];
    }

    /** The frames in every run. */
    long frames() {
        long frames = 0;
        for (int i = 0; i < count; i++) {
            frames += runs[2 * i + 1];
        }
        return frames;
    }

    /** Forgets every run. */
    void clear() {
        count = 0;
    }

    /**
     * Adds {@code frame}, extending the last run if it is its neighbour.
     *
     * @return false, with nothing added, if it would start a run beyond {@link #capacity()}
     */
    boolean add(int frame) {
        return add(frame, 1);
    }

    /**
     * Adds the {@code length} frames from {@code first} on, ascending, extending the last run if the
     * range starts right after it (or, for one frame, lies right before it).
     *
     * @return false, with nothing added, if they would start a run beyond {@link #capacity()}
     */
    boolean add(int first, int length) {
        if (count > 0) {
            int last = 2 * (count - 1);
            if (runs[last] + runs[last + 1] == first) {
                runs[last + 1] += length;
                return true;
            }
            if (length == 1 && runs[last] - 1 == first) {
                runs[last] = first;
                runs[last + 1]++;
                return true;
            }
        }
        if (count == capacity()) {
            return false;
        }
        runs[2 * count] = first;
        runs[2 * count + 1] = length;
        count++;
        return true;
    }

    /**
     * Asks {@code backing} to populate every run, one call each.
     *
     * @throws RuntimeException what the backing throws; the runs before it were asked for
     */
    void populate(FrameBacking backing) {
        for (int i = 0; i < count; i++) {
            backing.populate(runs[2 * i], runs[2 * i + 1]);
        }
    }
}
