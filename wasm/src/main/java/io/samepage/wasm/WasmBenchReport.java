package io.samepage.wasm;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import io.samepage.wasm.WasmBench.MemoryResult;
import io.samepage.wasm.WasmBench.Results;
import java.io.IOException;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import org.knowm.xchart.BitmapEncoder;
import org.knowm.xchart.CategoryChart;
import org.knowm.xchart.CategoryChartBuilder;

/**
 * {@code wasm.json}, {@code wasm.md} and {@code wasm.png} from one run of {@link WasmBench}: the
 * settings, each memory's figures, the ratios, and each of the must-shows with whether this run
 * met it (reported, not enforced). The chart shows SamepageMemory's host memory, later instantiation and
 * workload time as shares of ByteArrayMemory's (they differ by orders of magnitude in absolute terms).
 */
public final class WasmBenchReport {

    private static final ObjectMapper JSON = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);

    /** At most this share of ByteArrayMemory's host memory. */
    public static final double MUST_HOST_RATIO = 0.2;
    /** Later instances at least this many times faster to instantiate than the first. */
    public static final double MUST_INSTANTIATE_SPEEDUP = 10;
    /** The workload at least this share of ByteArrayMemory's speed. */
    public static final double MUST_WORKLOAD_SPEED = 0.7;

    private final Results results;
    private final String command;

    public WasmBenchReport(Results results, String command) {
        this.results = results;
        this.command = command;
    }

    public String json() {
        Map<String, Object> root = new LinkedHashMap<>();
        root.put("command", command);
        root.put("results", results);
        root.put("mustShow", List.of(
                Map.of("what", "host memory at most 1/5 of ByteArrayMemory's", "value", results.hostMemoryRatio(),
                        "met", results.hostMemoryRatio() <= MUST_HOST_RATIO),
                Map.of("what", "later instances instantiate at least 10x faster than the first", "value",
                        results.laterInstantiateSpeedup(), "met", results.laterInstantiateSpeedup() >= MUST_INSTANTIATE_SPEEDUP),
                Map.of("what", "workload at least 0.7x ByteArrayMemory's speed with the scanner running", "value",
                        results.workloadSpeed(), "met", results.workloadSpeed() >= MUST_WORKLOAD_SPEED)));
        try {
            return JSON.writeValueAsString(root) + "\n";
        } catch (JsonProcessingException e) {
            throw new IllegalStateException(e);
        }
    }

    public String markdown() {
        WasmBench.Settings s = results.settings();
        StringBuilder md = new StringBuilder();
        md.append("# samepage bench wasm\n\n");
        md.append("Command: `").append(command).append("`\n\n");
        md.append(String.format(Locale.ROOT, "%d instances of one module: a %d MiB data segment (seeded bytes), "
                        + "%d WebAssembly pages of memory; each instance gathers %d words from the data at random, "
                        + "heap-sorts them and counts them in a hash table (%d KiB written). SamepageMemory: %d cached "
                        + "pages, the scanner at %d pages every %d ms; seed %d.%n%n",
                s.instances(), s.dataMib(), results.memoryPages(), s.words(), s.heapBytes() >> 10, s.cachePages(),
                s.pagesToScan(), s.sleepMillis(), s.seed()));
        md.append("| memory | host memory (MiB) | of which heap | of which frames | first instantiation (ms) "
                + "| later, median (ms) | later, mean (ms) | workload, " + results.timedRuns() + " runs (s) |\n");
        md.append("|---|---|---|---|---|---|---|---|\n");
        for (MemoryResult r : List.of(results.byteArray(), results.samepage())) {
            md.append(String.format(Locale.ROOT, "| %s | %.1f | %.1f | %.1f | %.3f | %.3f | %.3f | %.2f |%n", r.memory(),
                    mib(r.hostBytes()), mib(r.heapBytes()), mib(r.frameBytes()), ms(r.firstInstantiateNanos()),
                    ms(r.laterInstantiateMedianNanos()), ms(r.laterInstantiateMeanNanos()), r.workloadNanos() / 1e9));
        }
        md.append(String.format(Locale.ROOT, "%nEngine at the end: pages_shared %d, pages_sharing %d, full_scans %d; "
                        + "the images' heap copy %.1f MiB (counted in SamepageMemory's heap).%n%n",
                results.counters().pagesShared(), results.counters().pagesSharing(), results.counters().fullScans(),
                mib(results.imageHeapBytes())));
        md.append("| must show | this run | met |\n|---|---|---|\n");
        md.append(String.format(Locale.ROOT, "| host memory at most 1/5 of ByteArrayMemory's | %.3f | %s |%n",
                results.hostMemoryRatio(), yes(results.hostMemoryRatio() <= MUST_HOST_RATIO)));
        md.append(String.format(Locale.ROOT, "| later instances instantiate at least 10x faster than the first "
                        + "(first / later median) | %.1fx | %s |%n",
                results.laterInstantiateSpeedup(), yes(results.laterInstantiateSpeedup() >= MUST_INSTANTIATE_SPEEDUP)));
        md.append(String.format(Locale.ROOT, "| workload at least 0.7x ByteArrayMemory's speed, scanner running | "
                + "%.2fx | %s |%n", results.workloadSpeed(), yes(results.workloadSpeed() >= MUST_WORKLOAD_SPEED)));
        return md.toString();
    }

    /**
     * The report's files by name, in order: {@code wasm.json}, {@code wasm.md} and the chart,
     * {@code wasm.png}. The caller writes them (the CLI: each to a temporary file, then moved into place,
     * so a failed write leaves the last report whole).
     */
    public Map<String, byte[]> files() {
        Map<String, byte[]> files = new LinkedHashMap<>();
        files.put("wasm.json", json().getBytes(java.nio.charset.StandardCharsets.UTF_8));
        files.put("wasm.md", markdown().getBytes(java.nio.charset.StandardCharsets.UTF_8));
        System.setProperty("java.awt.headless", "true");
        CategoryChart chart = new CategoryChartBuilder().width(900).height(520)
                .title(results.settings().instances() + " instances: SamepageMemory relative to ByteArrayMemory "
                        + "(1 = the same; lower is better)")
                .xAxisTitle("").yAxisTitle("SamepageMemory / ByteArrayMemory").build();
        chart.getStyler().setLegendVisible(false);
        chart.getStyler().setChartBackgroundColor(java.awt.Color.WHITE);
        chart.getStyler().setYAxisMin(0.0);
        MemoryResult b = results.byteArray();
        MemoryResult p = results.samepage();
        chart.addSeries("SamepageMemory", List.of("host memory", "later instantiation (median)", "workload time"),
                List.of(results.hostMemoryRatio(), (double) p.laterInstantiateMedianNanos() / b.laterInstantiateMedianNanos(),
                        1 / results.workloadSpeed()));
        javax.imageio.ImageIO.setUseCache(false);     // in memory: no cache file in java.io.tmpdir
        try {
            files.put("wasm.png", BitmapEncoder.getBitmapBytes(chart, BitmapEncoder.BitmapFormat.PNG));
        } catch (IOException e) {
            throw new java.io.UncheckedIOException("cannot encode the chart", e);     // in memory: not expected
        }
        return files;
    }

    private static double mib(long bytes) {
        return bytes / (double) (1 << 20);
    }

    private static double ms(long nanos) {
        return nanos / 1e6;
    }

    private static String yes(boolean met) {
        return met ? "yes" : "no";
    }
}
