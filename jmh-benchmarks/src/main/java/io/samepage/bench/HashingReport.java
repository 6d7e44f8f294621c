package io.samepage.bench;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Locale;
import org.openjdk.jmh.results.Result;
import org.openjdk.jmh.results.RunResult;
import org.openjdk.jmh.results.format.ResultFormatType;
import org.openjdk.jmh.runner.Runner;
import org.openjdk.jmh.runner.RunnerException;
import org.openjdk.jmh.runner.options.Options;
import org.openjdk.jmh.runner.options.OptionsBuilder;

/**
 * Runs {@link HashingBenchmark} once and writes what the README quotes: the JMH JSON and a Markdown
 * table of GB/s with each method's ratio to {@code readBandwidth} measured in the same run, and the
 * default hash's ratio to {@code crc32c}, the default before it. Ratios are of the medians of the
 * measured iterations, which a burst of load from other work on the machine moves less than the mean.
 *
 * <p>Usage: {@code java -cp jmh-benchmarks/target/benchmarks.jar io.samepage.bench.HashingReport [OUT_DIR]}
 * (default {@code target/bench}); writes {@code hashing.json} and {@code hashing.md} there.
 */
public final class HashingReport {

    private HashingReport() {
    }

    public static void main(String[] args) throws RunnerException, IOException {
        Path out = Path.of(args.length > 0 ? args[0] : "target/bench");
        Files.createDirectories(out);
        Options options = new OptionsBuilder()
                .include(HashingBenchmark.class.getName() + "\\.")
                .resultFormat(ResultFormatType.JSON)
                .result(out.resolve("hashing.json").toString())
                .build();
        Collection<RunResult> results = new Runner(options).run();
        String table = table(results);
        Files.writeString(out.resolve("hashing.md"), table);
        System.out.print(table);
    }

    /** One benchmark's scores in bytes per second: the median and mean of its iterations, and the mean's error. */
    private record Row(String method, double median, double mean, double error) {
    }

    static String table(Collection<RunResult> results) {
        List<Row> rows = new ArrayList<>();
        for (RunResult run : results) {
            Result<?> primary = run.getPrimaryResult();
            String method = run.getParams().getBenchmark().substring(HashingBenchmark.class.getName().length() + 1);
            rows.add(new Row(method, primary.getStatistics().getPercentile(50), primary.getScore(),
                    primary.getScoreError()));
        }
        double read = median(rows, "readBandwidth");
        StringBuilder md = new StringBuilder();
        md.append("| method | GB/s (median) | GB/s (mean) | ± (99.9%) | x readBandwidth (medians) |\n")
                .append("|---|---:|---:|---:|---:|\n");
        for (Row row : rows) {
            md.append(String.format(Locale.ROOT, "| %s | %s | %s | %s | %.2f |%n", row.method(), gb(row.median()),
                    gb(row.mean()), gb(row.error()), row.median() / read));
        }
        double defaultRatio = median(rows, "defaultHasher") / read;
        md.append(String.format(Locale.ROOT,
                "%ndefaultHasher / readBandwidth = %.2f (target: at least 0.60): %s%n",
                defaultRatio, defaultRatio >= 0.6 ? "met" : "NOT met"));
        md.append(String.format(Locale.ROOT, "defaultHasher / crc32c = %.2f%n",
                median(rows, "defaultHasher") / median(rows, "crc32c")));
        return md.toString();
    }

    private static double median(List<Row> rows, String method) {
        return rows.stream().filter(row -> row.method().equals(method)).mapToDouble(Row::median).findFirst()
                .orElse(Double.NaN);
    }

    private static String gb(double bytesPerSecond) {
        return String.format(Locale.ROOT, "%.2f", bytesPerSecond / 1e9);
    }
}
