package io.samepage.bench;

import io.samepage.hashing.Pages;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Collection;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.function.DoubleUnaryOperator;
import org.openjdk.jmh.profile.GCProfiler;
import org.openjdk.jmh.results.BenchmarkResult;
import org.openjdk.jmh.results.IterationResult;
import org.openjdk.jmh.results.Result;
import org.openjdk.jmh.results.RunResult;
import org.openjdk.jmh.results.format.ResultFormatType;
import org.openjdk.jmh.runner.Runner;
import org.openjdk.jmh.runner.RunnerException;
import org.openjdk.jmh.runner.options.Options;
import org.openjdk.jmh.runner.options.OptionsBuilder;
import org.openjdk.jmh.util.ListStatistics;
import org.openjdk.jmh.util.Statistics;

/**
 * Runs the engine benchmarks and writes what the README quotes: {@link ScanBenchmark} (with JMH's GC
 * profiler, for bytes allocated per page) beside {@code readBandwidth}, {@link CowBenchmark}, and
 * {@link EngineMemoryReport} in a JVM of its own; then {@code engine.json} (inputs, references,
 * derived numbers, ratios, errors and the memory report) and {@code engine.md} (the tables), beside
 * JMH's own JSON ({@code engine-scan-jmh.json}, {@code engine-cow-jmh.json}) and the memory report's
 * files. About 8 minutes on a 2-core machine; a fork needs about 4.5 GiB of RAM.
 *
 * <p>Scores are turned into rates per iteration, then summarized: the median, the mean with JMH's
 * 99.9% interval (Student's t over the iterations), and the range. Latencies are JMH's percentiles over
 * every sample, with the range of the per-iteration percentiles as the error bar.
 *
 * <p>Usage: {@code java -cp jmh-benchmarks/target/benchmarks.jar io.samepage.bench.EngineReport
 * [OUT_DIR] [scan] [cow] [memory]} (default {@code target/bench}, all three parts).
 */
public final class EngineReport {

    static final double TARGET_PAGES_PER_SECOND = 1.5e6;
    static final double TARGET_P50_NANOS = 1_000;
    static final double TARGET_P99_NANOS = 5_000;

    private EngineReport() {
    }

    public static void main(String[] args) throws RunnerException, IOException, InterruptedException {
        Path out = Path.of(args.length > 0 && !isPart(args[0]) ? args[0] : "target/bench");
        List<String> parts = new ArrayList<>();
        for (String arg : args) {
            if (isPart(arg)) {
                parts.add(arg);
            }
        }
        if (parts.isEmpty()) {
            parts = List.of("scan", "cow", "memory");
        }
        Files.createDirectories(out);
        Map<String, Object> json = new LinkedHashMap<>();
        json.put("run", runInfo());
        json.put("inputs", inputs());
        StringBuilder md = new StringBuilder();
        md.append(inputsMarkdown());
        if (parts.contains("scan")) {
            Collection<RunResult> scan = run(ScanBenchmark.class, out.resolve("engine-scan-jmh.json"), true);
            json.put("scan", scanSection(scan, md));
        }
        if (parts.contains("cow")) {
            Collection<RunResult> cow = run(CowBenchmark.class, out.resolve("engine-cow-jmh.json"), false);
            json.put("cow", cowSection(cow, md));
        }
        if (parts.contains("memory")) {
            runMemoryReport(out);
            json.put("memory", new Json.Raw(Files.readString(out.resolve("engine-memory.json"))));
            md.append("\n## Memory: metadata and RSS (`EngineMemoryReport`, a JVM of its own)\n\n")
                    .append(Files.readString(out.resolve("engine-memory.md")));
        }
        Files.writeString(out.resolve("engine.json"), Json.write(json));
        Files.writeString(out.resolve("engine.md"), md.toString());
        System.out.print(md);
    }

    private static boolean isPart(String arg) {
        return arg.equals("scan") || arg.equals("cow") || arg.equals("memory");
    }

    private static Collection<RunResult> run(Class<?> benchmark, Path json, boolean gc) throws RunnerException {
        OptionsBuilder options = new OptionsBuilder();
        options.include(benchmark.getName() + "\\.").resultFormat(ResultFormatType.JSON).result(json.toString());
        if (benchmark == ScanBenchmark.class) {
            options.param("threads", "1");          // the one-thread figures; scan_threads is measured on its own
        }
        if (gc) {
            options.addProfiler(GCProfiler.class);
        }
        Options built = options.build();
        return new Runner(built).run();
    }

    /** The memory report in a JVM of its own, so its RSS holds nothing but the engine and its guests. */
    private static void runMemoryReport(Path out) throws IOException, InterruptedException {
        String java = ProcessHandle.current().info().command().orElse("java");
        Process process = new ProcessBuilder(java, "--enable-native-access=ALL-UNNAMED", "-cp",
                System.getProperty("java.class.path"), EngineMemoryReport.class.getName(), out.toString())
                .inheritIO().start();
        if (process.waitFor() != 0) {
            throw new IllegalStateException("EngineMemoryReport failed with exit code " + process.exitValue());
        }
    }

    private static Map<String, Object> scanSection(Collection<RunResult> results, StringBuilder md) {
        Map<String, Summary> rates = new LinkedHashMap<>();
        Map<String, Double> allocation = new LinkedHashMap<>();
        for (RunResult run : inOrder(results, "mergePasses", "steadyScan", "steadyScanSmart", "readBandwidth")) {
            String method = method(run);
            // mergePasses is a single shot scored in ns per page visit; the others score pages/s.
            DoubleUnaryOperator toRate = method.equals("mergePasses") ? ns -> 1e9 / ns : r -> r;
            rates.put(method, Summary.of(run, toRate));
            Result<?> alloc = run.getSecondaryResults().get("gc.alloc.rate.norm");
            allocation.put(method, alloc == null ? Double.NaN : alloc.getScore());
        }
        Summary read = rates.get("readBandwidth");
        md.append("\n## Scanner throughput: one thread, 4 GiB of guests, half of the pages duplicated\n\n");
        md.append("| benchmark | pages/s (median) | mean ± 99.9% | min – max | GB/s of guest memory | x readBandwidth "
                + "(min – max) | bytes allocated per page |\n|---|---:|---:|---:|---:|---:|---:|\n");
        Map<String, Object> section = new LinkedHashMap<>();
        for (Map.Entry<String, Summary> e : rates.entrySet()) {
            Summary s = e.getValue();
            double ratio = read == null ? Double.NaN : s.median() / read.median();
            md.append(String.format(Locale.ROOT, "| %s | %s | %s ± %s | %s – %s | %.2f | %.2f (%.2f – %.2f) | %.3f |%n",
                    e.getKey(), millions(s.median()), millions(s.mean()), millions(s.error()), millions(s.min()), millions(s.max()),
                    s.median() * Pages.PAGE_SIZE / 1e9, ratio, read == null ? Double.NaN : s.min() / read.max(),
                    read == null ? Double.NaN : s.max() / read.min(), allocation.get(e.getKey())));
            Map<String, Object> entry = s.toJson("pagesPerSecond");
            entry.put("gigabytesPerSecond", s.median() * Pages.PAGE_SIZE / 1e9);
            entry.put("ratioToReadBandwidth", ratio);
            entry.put("allocatedBytesPerPage", allocation.get(e.getKey()));
            section.put(e.getKey(), entry);
        }
        md.append("\nPages/s are guest page visits per second on one scanning thread (one full scan visits ")
                .append(ScanBenchmark.PAGES).append(" pages); `mergePasses` is the two full scans from written to ")
                .append("converged, and `readBandwidth` is 4 KiB pages of a plain sequential read. `smart_scan` is off ")
                .append("except in `steadyScanSmart`. Bytes read per visit set each scan's bound: `mergePasses` hashes every ")
                .append("page twice and compares each twin pair once (5 KiB per visit, so at most 0.8 x readBandwidth); ")
                .append("`steadyScan` hashes only the unique half (2 KiB per visit, at most 2 x readBandwidth).\n");
        Summary merge = rates.get("mergePasses");
        if (merge != null) {
            md.append(String.format(Locale.ROOT, "Time to converge 4 GiB (two full scans): %.2f s (median).%n",
                    2.0 * ScanBenchmark.PAGES / merge.median()));
        }
        for (String method : List.of("mergePasses", "steadyScan")) {
            Summary s = rates.get(method);
            if (s != null) {
                md.append(String.format(Locale.ROOT, "%s: %s pages/s (target: at least %s pages/s per thread): %s%n",
                        method, millions(s.median()), millions(TARGET_PAGES_PER_SECOND),
                        s.median() >= TARGET_PAGES_PER_SECOND ? "met" : "NOT met"));
            }
        }
        return section;
    }

    private static Map<String, Object> cowSection(Collection<RunResult> results, StringBuilder md) {
        Map<String, Map<String, Object>> rows = new LinkedHashMap<>();
        for (RunResult run : inOrder(results, "cowBreakWarm1Byte", "cowBreak1Byte", "cowBreak8Bytes", "cowBreakLastMapper",
                "firstWrite",
                "privateWrite1Byte", "privateWrite8Bytes")) {
            Statistics all = run.getPrimaryResult().getStatistics();
            ListStatistics p50s = new ListStatistics();
            ListStatistics p99s = new ListStatistics();
            for (BenchmarkResult fork : run.getBenchmarkResults()) {
                for (IterationResult iteration : fork.getIterationResults()) {
                    Statistics it = iteration.getPrimaryResult().getStatistics();
                    p50s.addValue(it.getPercentile(50));
                    p99s.addValue(it.getPercentile(99));
                }
            }
            Map<String, Object> row = new LinkedHashMap<>();
            row.put("samples", all.getN());
            row.put("p50Nanos", all.getPercentile(50));
            row.put("p50IterationMinNanos", p50s.getMin());
            row.put("p50IterationMaxNanos", p50s.getMax());
            row.put("p99Nanos", all.getPercentile(99));
            row.put("p99IterationMinNanos", p99s.getMin());
            row.put("p99IterationMaxNanos", p99s.getMax());
            row.put("p999Nanos", all.getPercentile(99.9));
            row.put("meanNanos", all.getMean());
            rows.put(method(run), row);
        }
        md.append("\n## Write latency: copy-on-write break against a write to a private page\n\n");
        md.append("| benchmark | p50 ns | p50 per iteration | p99 ns | p99 per iteration | p99.9 ns | samples | p50 x privateWrite |\n");
        md.append("|---|---:|---:|---:|---:|---:|---:|---:|\n");
        for (Map.Entry<String, Map<String, Object>> e : rows.entrySet()) {
            Map<String, Object> row = e.getValue();
            Map<String, Object> reference = rows.get(e.getKey().endsWith("8Bytes") ? "privateWrite8Bytes" : "privateWrite1Byte");
            double ratio = reference == null ? Double.NaN : (Double) row.get("p50Nanos") / (Double) reference.get("p50Nanos");
            row.put("p50RatioToPrivateWrite", ratio);
            md.append(String.format(Locale.ROOT, "| %s | %.0f | %.0f – %.0f | %.0f | %.0f – %.0f | %.0f | %d | %.1f |%n",
                    e.getKey(), row.get("p50Nanos"), row.get("p50IterationMinNanos"), row.get("p50IterationMaxNanos"),
                    row.get("p99Nanos"), row.get("p99IterationMinNanos"), row.get("p99IterationMaxNanos"),
                    row.get("p999Nanos"), row.get("samples"), ratio));
        }
        md.append("\nOne sample is one `Guest.write` of 1 or 8 bytes, timed by JMH (`SampleTime`, which includes about two "
                + "`System.nanoTime()` calls). `cowBreakWarm1Byte`: a break that takes a frame already faulted in, the "
                + "scanner having refilled the pool's warm list between every " + CowBenchmark.WRITES_PER_SCANNER_BATCH
                + " writes (a guest breaking slower than the scanner refills); `cowBreak*`: the same breaks with the "
                + "warm list used up, so each takes a frame the OS took back and faults it in; the page maps a frame "
                + "that other pages keep mapping; "
                + "`cowBreakLastMapper`: its last mapper, so the frame is freed too; `firstWrite`: a never-written page "
                + "(a fresh frame, no copy); `privateWrite*`: the reference, no copy.\n");
        for (String method : List.of("cowBreakWarm1Byte", "cowBreak1Byte", "cowBreak8Bytes")) {
            Map<String, Object> row = rows.get(method);
            if (row != null) {
                double p50 = (Double) row.get("p50Nanos");
                double p99 = (Double) row.get("p99Nanos");
                md.append(String.format(Locale.ROOT, "%s: p50 %.0f ns (target: at most %.0f): %s; p99 %.0f ns (target: at most %.0f): %s%n",
                        method, p50, TARGET_P50_NANOS, p50 <= TARGET_P50_NANOS ? "met" : "NOT met",
                        p99, TARGET_P99_NANOS, p99 <= TARGET_P99_NANOS ? "met" : "NOT met"));
            }
        }
        return new LinkedHashMap<>(rows);
    }

    /** The results of the named methods in that order, then any others. */
    private static List<RunResult> inOrder(Collection<RunResult> results, String... methods) {
        List<RunResult> ordered = new ArrayList<>();
        for (String method : methods) {
            for (RunResult run : results) {
                if (method(run).equals(method)) {
                    ordered.add(run);
                }
            }
        }
        for (RunResult run : results) {
            if (!ordered.contains(run)) {
                ordered.add(run);
            }
        }
        return ordered;
    }

    private static String method(RunResult run) {
        String name = run.getParams().getBenchmark();
        return name.substring(name.lastIndexOf('.') + 1);
    }

    private static Map<String, Object> runInfo() {
        Map<String, Object> info = new LinkedHashMap<>();
        info.put("date", Instant.now().toString());
        info.put("java", System.getProperty("java.vm.name") + " " + System.getProperty("java.vm.version"));
        info.put("os", System.getProperty("os.name") + " " + System.getProperty("os.version") + " " + System.getProperty("os.arch"));
        info.put("cpus", Runtime.getRuntime().availableProcessors());
        info.put("cpuModel", cpuModel());
        return info;
    }

    private static Map<String, Object> inputs() {
        Map<String, Object> scan = new LinkedHashMap<>();
        scan.put("guests", ScanBenchmark.GUESTS);
        scan.put("guestBytes", ScanBenchmark.GUEST_BYTES);
        scan.put("guestPages", ScanBenchmark.PAGES);
        scan.put("composition", "one domain; half duplicated: each even page has one twin (same page of the partner "
                + "guest), each odd page is unique; random content");
        scan.put("seed", EngineWorkload.SEED);
        scan.put("knobs", "smart_scan=0 (steadyScanSmart: 1), max_page_sharing=256, use_zero_pages=0, hash CRC32C");
        scan.put("readBandwidthRegionBytes", ScanBenchmark.READ_REGION_BYTES);
        Map<String, Object> cow = new LinkedHashMap<>();
        cow.put("sharedPages", CowBenchmark.COW_PAGES);
        cow.put("sharedContents", CowBenchmark.COW_CONTENTS);
        cow.put("lastMapperPairs", CowBenchmark.LAST_MAPPER_PAIRS);
        cow.put("freshPages", CowBenchmark.FRESH_PAGES);
        cow.put("privatePages", CowBenchmark.PRIVATE_PAGES);
        cow.put("warmWritesPerScannerBatch", CowBenchmark.WRITES_PER_SCANNER_BATCH);
        cow.put("writeOffsetInPage", CowBenchmark.OFFSET);
        Map<String, Object> inputs = new LinkedHashMap<>();
        inputs.put("scan", scan);
        inputs.put("cow", cow);
        Map<String, Object> targets = new LinkedHashMap<>();
        targets.put("scanPagesPerSecondPerThread", TARGET_PAGES_PER_SECOND);
        targets.put("cowP50Nanos", TARGET_P50_NANOS);
        targets.put("cowP99Nanos", TARGET_P99_NANOS);
        targets.put("metadataBytesPerGuestPage", EngineMemoryReport.TARGET_BYTES_PER_PAGE);
        targets.put("metadataBytesPerFrame", EngineMemoryReport.TARGET_BYTES_PER_FRAME);
        inputs.put("targets", targets);
        return inputs;
    }

    private static String inputsMarkdown() {
        return String.format(Locale.ROOT, "# Engine benchmarks%n%n%s, %d CPUs (%s), %s.%n%n"
                        + "Scan: %d guests of %d MiB in one domain (%d guest pages); half of the pages have one twin in the "
                        + "partner guest, half are unique; random content from seed 0x%X; smart_scan off unless named, "
                        + "max_page_sharing 256, CRC32C. Reference: `readBandwidth`, a sequential sum of longs over %d MiB "
                        + "off-heap, in the same run.%n",
                System.getProperty("java.vm.name") + " " + System.getProperty("java.vm.version"),
                Runtime.getRuntime().availableProcessors(), cpuModel(), Instant.now(), ScanBenchmark.GUESTS,
                ScanBenchmark.GUEST_BYTES >> 20, ScanBenchmark.PAGES, EngineWorkload.SEED,
                ScanBenchmark.READ_REGION_BYTES >> 20);
    }

    private static String cpuModel() {
        try {
            for (String line : Files.readAllLines(Path.of("/proc/cpuinfo"))) {
                if (line.startsWith("model name")) {
                    return line.substring(line.indexOf(':') + 1).strip();
                }
            }
        } catch (IOException e) {
            return "unknown CPU";
        }
        return "unknown CPU";
    }

    private static String millions(double perSecond) {
        return String.format(Locale.ROOT, "%.2f M", perSecond / 1e6);
    }

    /** A benchmark's iterations as rates: median, mean with the 99.9% interval half-width, range. */
}
