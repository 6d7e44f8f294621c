package io.samepage.bench;

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.function.DoubleUnaryOperator;
import org.openjdk.jmh.results.BenchmarkResult;
import org.openjdk.jmh.results.IterationResult;
import org.openjdk.jmh.results.RunResult;
import org.openjdk.jmh.util.ListStatistics;

/**
 * One benchmark's measured iterations, summarised the way the reports quote them: the median, the
 * mean with JMH's 99.9% error, and the range, after turning each iteration's score into the unit the
 * report speaks in.
 */
record Summary(double median, double mean, double error, double min, double max, long n) {

    /** Summarises every measured iteration of {@code run}, each score mapped through {@code unit}. */
    static Summary of(RunResult run, DoubleUnaryOperator unit) {
        ListStatistics values = new ListStatistics();
        for (BenchmarkResult fork : run.getBenchmarkResults()) {
            for (IterationResult iteration : fork.getIterationResults()) {
                values.addValue(unit.applyAsDouble(iteration.getPrimaryResult().getScore()));
            }
        }
        return new Summary(values.getPercentile(50), values.getMean(),
                values.getN() > 1 ? values.getMeanErrorAt(0.999) : Double.NaN, values.getMin(), values.getMax(),
                values.getN());
    }

    Map<String, Object> toJson(String unit) {
        Map<String, Object> json = new LinkedHashMap<>();
        json.put("unit", unit);
        json.put("median", median);
        json.put("mean", mean);
        json.put("error999", error);
        json.put("min", min);
        json.put("max", max);
        json.put("iterations", n);
        return json;
    }
}
