package io.samepage.density;

import java.util.Arrays;

/**
 * How sharing grew during one mode's run: samples of (seconds, CPU-seconds, guest pages saved), taken
 * after each scan batch, load or poll, from the moment that mode's deduplication could start.
 *
 * <p>"Saved" is guest pages that hold no frame of their own: for the engine, guest pages written minus
 * frames the guests hold; for kernel KSM, {@code pages_sharing + ksm_zero_pages}. The time to 99% of
 * the final sharing is the first sample at or above 99% of the {@link #finalSaved() final} value (or of
 * a target given from elsewhere, for a run that was stopped before it settled).
 *
 * <p>Not thread safe.
 */
final class SharingTrace {

    /** The fraction of the final sharing the suite times. */
    static final double FRACTION = 0.99;

    private long[] nanos = new long[64];
    private long[] cpuNanos = new long[64];
    private long[] saved = new long[64];
    private int size;

    /** Adds a sample; times are from the start of the run. */
    void add(long elapsedNanos, long elapsedCpuNanos, long savedPages) {
        if (size == nanos.length) {
            nanos = Arrays.copyOf(nanos, size * 2);
            cpuNanos = Arrays.copyOf(cpuNanos, size * 2);
            saved = Arrays.copyOf(saved, size * 2);
        }
        nanos[size] = elapsedNanos;
        cpuNanos[size] = elapsedCpuNanos;
        saved[size] = savedPages;
        size++;
    }

    int size() {
        return size;
    }

    /** The last sample's saving: the run's final sharing. */
    long finalSaved() {
        return size == 0 ? 0 : saved[size - 1];
    }

    long lastNanos() {
        return size == 0 ? 0 : nanos[size - 1];
    }

    long lastCpuNanos() {
        return size == 0 ? 0 : cpuNanos[size - 1];
    }

    /** The first sample at or above {@link #FRACTION} of {@code target} pages, or -1 if none. */
    int indexOf99(long target) {
        if (target <= 0) {
            return size == 0 ? -1 : 0;
        }
        double needed = FRACTION * target;
        for (int i = 0; i < size; i++) {
            if (saved[i] >= needed) {
                return i;
            }
        }
        return -1;
    }

    /**
     * When this run reached 99% of {@code target}.
     *
     * @return null if it never did
     */
    Point pointOf99(long target) {
        int i = indexOf99(target);
        return i < 0 ? null : new Point(nanos[i] / 1e9, cpuNanos[i] / 1e9, saved[i]);
    }

    /** One sample: seconds and CPU-seconds from the start, and the pages saved then. */
    record Point(double seconds, double cpuSeconds, long savedPages) {

        /** Pages saved per CPU-second up to this point; NaN if no CPU time was measured. */
        double pagesPerCpuSecond() {
            return cpuSeconds > 0 ? savedPages / cpuSeconds : Double.NaN;
        }
    }
}
