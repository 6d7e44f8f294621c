package io.samepage.density;

import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.function.ToDoubleFunction;

/**
 * Every run of one timed mode at the largest N ({@link DensitySuite.Settings#rateRuns()}), for the
 * claims that hold (b) against (d): one run is one sample on a noisy machine (kernel KSM's own rate has
 * moved by a factor of 1.8 between runs here), so they compare medians and say the range.
 *
 * @param runs the runs, the one in the report's tables first; each reached 99% of its final sharing
 */
record TimedRuns(List<ModeResult> runs) {

    TimedRuns {
        runs = List.copyOf(runs);
        if (runs.isEmpty() || runs.stream().anyMatch(r -> r.at99() == null)) {
            throw new IllegalArgumentException("every run needs a time to 99%: " + runs);
        }
    }

    int count() {
        return runs.size();
    }

    double medianSeconds() {
        return median(SharingTrace.Point::seconds);
    }

    double medianCpuSeconds() {
        return median(SharingTrace.Point::cpuSeconds);
    }

    double medianRate() {
        return median(SharingTrace.Point::pagesPerCpuSecond);
    }

    /**
     * The median rate, with the range when there are several runs: {@code 812345} or
     * {@code 812345 (700000 to 850000, 3 runs)}.
     */
    String rateText() {
        if (runs.size() == 1) {
            return String.format(Locale.ROOT, "%.0f", medianRate());
        }
        double[] sorted = sorted(SharingTrace.Point::pagesPerCpuSecond);
        return String.format(Locale.ROOT, "%.0f (%.0f to %.0f, %d runs)", medianRate(), sorted[0],
                sorted[sorted.length - 1], runs.size());
    }

    /** The median of {@code figure} over the runs; of an even count, the mean of the middle two. */
    private double median(ToDoubleFunction<SharingTrace.Point> figure) {
        return median(sorted(figure));
    }

    /** The median of {@code sorted}, ascending; of an even count, the mean of the middle two; NaN if empty. */
    static double median(double[] sorted) {
        int mid = sorted.length / 2;
        return sorted.length == 0 ? Double.NaN : sorted.length % 2 == 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
    }

    private double[] sorted(ToDoubleFunction<SharingTrace.Point> figure) {
        double[] values = runs.stream().mapToDouble(r -> figure.applyAsDouble(r.at99())).toArray();
        Arrays.sort(values);
        return values;
    }
}
