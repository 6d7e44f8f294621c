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
 * default hash's ratio to {@code crc32c}, the default before it.
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

    static String table(Collection<RunResult> results) {
        double read = Double.NaN;
        double crc32c = Double.NaN;
        List<String[]> rows = new ArrayList<>();
        for (RunResult run : results) {
            Result<?> primary = run.getPrimaryResult();
            String method = run.getParams().getBenchmark().substring(HashingBenchmark.class.getName().length() + 1);
            if (method.equals("readBandwidth")) {
                read = primary.getScore();
            }
            if (method.equals("crc32c")) {
                crc32c = primary.getScore();
            }
            rows.add(new String[] {method, gb(primary.getScore()), gb(primary.getScoreError()),
                String.valueOf(primary.getScore())});
        }
        StringBuilder md = new StringBuilder();
        md.append("| method | GB/s | ± (99.9%) | x readBandwidth |\n|---|---:|---:|---:|\n");
        double defaultRatio = Double.NaN;
        double defaultToCrc = Double.NaN;
        for (String[] row : rows) {
            double ratio = Double.parseDouble(row[3]) / read;
            if (row[0].equals("defaultHasher")) {
                defaultRatio = ratio;
                defaultToCrc = Double.parseDouble(row[3]) / crc32c;
            }
            md.append(String.format(Locale.ROOT, "| %s | %s | %s | %.2f |%n", row[0], row[1], row[2], ratio));
        }
        md.append(String.format(Locale.ROOT,
                "%ndefaultHasher / readBandwidth = %.2f (target: at least 0.60): %s%n",
                defaultRatio, defaultRatio >= 0.6 ? "met" : "NOT met"));
        md.append(String.format(Locale.ROOT, "defaultHasher / crc32c = %.2f%n", defaultToCrc));
        return md.toString();
    }

    private static String gb(double bytesPerSecond) {
        return String.format(Locale.ROOT, "%.2f", bytesPerSecond / 1e9);
    }
}
