package io.samepage.daemon;

import io.samepage.core.DedupEngine;
import io.samepage.core.EngineCounters;
import io.samepage.core.Guest;
import io.samepage.core.GuestCounters;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * What the daemon publishes: the counter values by {@link CountersFile} id, and the Prometheus text of
 * {@code /metrics} (every engine counter as {@code samepage_NAME}, per-guest counters with a
 * {@code guest} label, and process info). It also holds the one map from the engine's counters to
 * Linux KSM's names ({@link #ksmCounters}), which the CLI's reports use too.
 *
 * <p>Thread safety: safe from any thread; each call takes a fresh snapshot of the engine.
 */
public final class DaemonMetrics {

    private static final Map<String, String> GUEST_HELP = Map.of(
            "pages_total", "guest pages (its size / 4 KiB)",
            "merging_pages", "pages mapping a shared frame (ksm_merging_pages)",
            "zero_pages", "pages mapped to the zero frame (ksm_zero_pages)",
            "profit", "bytes saved net of this guest's metadata (ksm_process_profit)");

    private final DedupEngine engine;
    private final long startMillis;

    DaemonMetrics(DedupEngine engine, long startMillis) {
        this.engine = engine;
        this.startMillis = startMillis;
    }

    /** Every counter, indexed by its {@link CountersFile#COUNTER_NAMES} id. */
    long[] counterValues() {
        return values(engine.counters(), engine.guests().size());
    }

    /**
     * KSM's engine-wide counters under their sysfs names (ARCHITECTURE.md, "Counters"), in that order, then
     * {@code pages_total} and {@code metadata_bytes}.
     */
    public static Map<String, Long> ksmCounters(EngineCounters c) {
        Map<String, Long> counters = new LinkedHashMap<>();
        counters.put("pages_shared", c.pagesShared());
        counters.put("pages_sharing", c.pagesSharing());
        counters.put("pages_unshared", c.pagesUnshared());
        counters.put("pages_volatile", c.pagesVolatile());
        counters.put("full_scans", c.fullScans());
        counters.put("pages_scanned", c.pagesScanned());
        counters.put("pages_skipped", c.pagesSkipped());
        counters.put("ksm_zero_pages", c.ksmZeroPages());
        counters.put("stable_node_chains", c.stableNodeChains());
        counters.put("stable_node_dups", c.stableNodeDups());
        counters.put("general_profit", c.generalProfit());
        counters.put("pages_total", c.pagesTotal());
        counters.put("metadata_bytes", c.metadataBytes());
        return counters;
    }

    static long[] values(EngineCounters c, int guests) {
        Map<String, Long> named = ksmCounters(c);
        named.put("frames_in_use", c.framesInUse());
        named.put("guests", (long) guests);
        long[] values = new long[CountersFile.COUNTER_NAMES.size()];
        for (int id = 0; id < values.length; id++) {
            values[id] = named.getOrDefault(CountersFile.COUNTER_NAMES.get(id), 0L);
        }
        return values;
    }

    /** The {@code /metrics} body, Prometheus text exposition format 0.0.4. */
    String prometheusText() {
        StringBuilder out = new StringBuilder(4096);
        long[] values = counterValues();
        for (int id = 0; id < values.length; id++) {
            String name = CountersFile.COUNTER_NAMES.get(id);
            MetricsServer.family(out, "samepage_" + name, name.equals("full_scans") || name.equals("pages_scanned")
                    || name.equals("pages_skipped") ? "counter" : "gauge", "KSM's " + name + " of the daemon's engine");
            out.append("samepage_").append(name).append(' ').append(values[id]).append('\n');
        }
        var guests = engine.guests();
        for (String field : new String[] {"pages_total", "merging_pages", "zero_pages", "profit"}) {
            String metric = "samepage_guest_" + field;
            MetricsServer.family(out, metric, "gauge", GUEST_HELP.get(field));
            for (Guest guest : guests) {
                GuestCounters g = guest.counters();
                long value = switch (field) {
                    case "pages_total" -> g.pagesTotal();
                    case "merging_pages" -> g.mergingPages();
                    case "zero_pages" -> g.zeroPages();
                    default -> g.profit();
                };
                out.append(metric).append("{guest=\"").append(MetricsServer.label(g.name()))
                        .append("\",domain=\"").append(MetricsServer.label(g.domain())).append("\"} ")
                        .append(value).append('\n');
            }
        }
        MetricsServer.family(out, "samepage_info", "gauge", "the daemon process: pid, Java runtime");
        out.append("samepage_info{pid=\"").append(ProcessHandle.current().pid()).append("\",java_version=\"")
                .append(MetricsServer.label(Runtime.version().toString())).append("\"} 1\n");
        MetricsServer.family(out, "process_start_time_seconds", "gauge", "start time of the daemon, seconds since the epoch");
        out.append("process_start_time_seconds ").append(startMillis / 1000.0).append('\n');
        Runtime rt = Runtime.getRuntime();
        MetricsServer.family(out, "samepage_jvm_heap_used_bytes", "gauge", "Java heap in use");
        out.append("samepage_jvm_heap_used_bytes ").append(rt.totalMemory() - rt.freeMemory()).append('\n');
        return out.toString();
    }
}
