package io.samepage.bench;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Collection;
import java.util.Locale;
import org.openjdk.jmh.results.Result;
import org.openjdk.jmh.results.RunResult;
import org.openjdk.jmh.results.format.ResultFormatType;
import org.openjdk.jmh.runner.Runner;
import org.openjdk.jmh.runner.RunnerException;
import org.openjdk.jmh.runner.options.Options;
import org.openjdk.jmh.runner.options.OptionsBuilder;

/**
 * Runs {@link EstimatorBenchmark} once and writes the JMH JSON and a Markdown table: each method's GB/s
 * (median and mean of the measured iterations, the mean's 99.9% error), its ratio to
 * {@code readBandwidth} from the same run, and the CPU-seconds one core spends per GiB at that rate.
 *
 * <p>Usage: {@code java -cp jmh-benchmarks/target/benchmarks.jar io.samepage.bench.EstimatorReport [OUT_DIR]}
 * (default {@code target/bench}); writes {@code estimator.json} and {@code estimator.md} there.
 */
public final class EstimatorReport {

    private EstimatorReport() {
    }

    public static void main(String[] args) throws RunnerException, IOException {
        Path out = Path.of(args.length > 0 ? args[0] : "target/bench");
        Files.createDirectories(out);
        Options options = new OptionsBuilder()
                .include(EstimatorBenchmark.class.getName() + "\\.")
                .resultFormat(ResultFormatType.JSON)
                .result(out.resolve("estimator.json").toString())
                .build();
        String table = table(new Runner(options).run());
        Files.writeString(out.resolve("estimator.md"), table);
        System.out.print(table);
    }

    static String table(Collection<RunResult> results) {
        double read = Double.NaN;
        for (RunResult run : results) {
            if (run.getParams().getBenchmark().endsWith(".readBandwidth")) {
                read = run.getPrimaryResult().getStatistics().getPercentile(50);
            }
        }
        StringBuilder md = new StringBuilder();
        md.append("| method | GB/s (median) | GB/s (mean) | ± (99.9%) | x readBandwidth (medians) | CPU-s per GiB (median) |\n")
                .append("|---|---:|---:|---:|---:|---:|\n");
        for (RunResult run : results) {
            Result<?> primary = run.getPrimaryResult();
            String method = run.getParams().getBenchmark().substring(EstimatorBenchmark.class.getName().length() + 1);
            double median = primary.getStatistics().getPercentile(50);
            md.append(String.format(Locale.ROOT, "| %s | %.2f | %.2f | %.2f | %.2f | %.3f |%n", method, median / 1e9,
                    primary.getScore() / 1e9, primary.getScoreError() / 1e9, median / read, (1L << 30) / median));
        }
        return md.toString();
    }
}
