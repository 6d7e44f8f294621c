package io.samepage.daemon;

import io.prometheus.metrics.core.metrics.CounterWithCallback;
import io.prometheus.metrics.core.metrics.GaugeWithCallback;
import io.prometheus.metrics.core.metrics.Info;
import io.prometheus.metrics.expositionformats.PrometheusTextFormatWriter;
import io.prometheus.metrics.model.registry.PrometheusRegistry;
import io.samepage.core.DedupEngine;
import io.samepage.core.EngineCounters;
import io.samepage.core.Guest;
import io.samepage.core.GuestCounters;
import io.samepage.host.KsmPolicyLoop;
import io.samepage.host.PageDigestEstimator;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.LongSupplier;
import java.util.function.Supplier;
import java.util.function.ToDoubleFunction;
import java.util.function.ToLongFunction;

/**
 * What the daemon publishes: the counter values by {@link CountersFile} id, and {@code /metrics}, a
 * registry of Prometheus' client library ({@code prometheus-metrics-core}) written in the text format by
 * its {@code prometheus-metrics-exposition-textformats}. It also holds the one map from the engine's
 * counters to Linux KSM's names ({@link #ksmCounters}), which the CLI's reports use too.
 *
 * <p>Each metric is a callback, read at scrape time from one snapshot of the engine's counters and of
 * each guest's, so a scrape's values agree as a counters-file update's do. Names keep KSM's
 * vocabulary under Prometheus' conventions: {@code samepage_} and the sysfs name, a counter (a value
 * that only grows: {@code full_scans}, {@code pages_scanned}, {@code pages_skipped}) ends in
 * {@code _total}, a figure in bytes ends in {@code _bytes}, and no gauge ends in {@code _total} (KSM's
 * {@code pages_total} is {@code samepage_pages}). docs/daemon.md lists them, and the names they replaced.
 *
 * <p>Thread safety: safe from any thread; a scrape holds this object's lock.
 */
public final class DaemonMetrics {

    /** The {@code Content-Type} of {@link #prometheusText()}. */
    static final String CONTENT_TYPE = PrometheusTextFormatWriter.CONTENT_TYPE;

    private static final PrometheusTextFormatWriter TEXT = PrometheusTextFormatWriter.create();

    private final DedupEngine engine;
    private final PrometheusRegistry registry = new PrometheusRegistry();
    private EngineCounters scraped;
    private List<GuestCounters> scrapedGuests;

    DaemonMetrics(DedupEngine engine, long startMillis) {
        this.engine = engine;
        engineGauge("samepage_pages_shared", "KSM's pages_shared: frames in the stable index, each duplicate "
                + "of a chain counted", EngineCounters::pagesShared);
        engineGauge("samepage_pages_sharing", "KSM's pages_sharing: guest pages mapping a shared frame beyond "
                + "its first mapper", EngineCounters::pagesSharing);
        engineGauge("samepage_pages_unshared", "KSM's pages_unshared: pages in the unstable index, unchanged "
                + "since their last visit, no twin found", EngineCounters::pagesUnshared);
        engineGauge("samepage_pages_volatile", "KSM's pages_volatile: tracked pages that changed since their "
                + "last visit or were visited once", EngineCounters::pagesVolatile);
        engineCounter("samepage_full_scans_total", "KSM's full_scans: completed passes over every guest page",
                EngineCounters::fullScans);
        engineCounter("samepage_pages_scanned_total", "KSM's pages_scanned: guest pages the scanner visited",
                EngineCounters::pagesScanned);
        engineCounter("samepage_pages_skipped_total", "KSM's pages_skipped: visits that smart_scan skipped",
                EngineCounters::pagesSkipped);
        engineCounter("samepage_frame_release_failures_total", "freed frames whose memory the system did not take "
                + "back: each zeroed in place instead, still resident", EngineCounters::frameReleaseFailures);
        engineGauge("samepage_ksm_zero_pages", "KSM's ksm_zero_pages: pages mapped to the zero frame "
                + "(use_zero_pages)", EngineCounters::ksmZeroPages);
        engineGauge("samepage_stable_node_chains", "KSM's stable_node_chains: contents held by more than one "
                + "stable frame", EngineCounters::stableNodeChains);
        engineGauge("samepage_stable_node_dups", "KSM's stable_node_dups: the frames of those contents",
                EngineCounters::stableNodeDups);
        engineGauge("samepage_general_profit_bytes", "KSM's general_profit: bytes saved net of metadata, "
                + "(pages_sharing + ksm_zero_pages) * 4096 - metadata", EngineCounters::generalProfit);
        engineGauge("samepage_pages", "guest pages of all live guests (their sizes / 4 KiB)",
                EngineCounters::pagesTotal);
        engineGauge("samepage_metadata_bytes", "the engine's metadata: per-frame and per-page arrays, index "
                + "tables, locks", EngineCounters::metadataBytes);
        engineGauge("samepage_frames_in_use", "host frames allocated, zero frames included",
                EngineCounters::framesInUse);
        engineGauge("samepage_frames_withheld", "frames kept in use for good because they could not be freed "
                + "safely (counted in samepage_frames_in_use too)", EngineCounters::framesWithheld);
        GaugeWithCallback.builder().name("samepage_guests").help("guests of the daemon's engine")
                .callback(cb -> cb.call(scrapedGuests.size())).register(registry);
        guestGauge("samepage_guest_pages", "the guest's pages (its size / 4 KiB)", GuestCounters::pagesTotal);
        guestGauge("samepage_guest_merging_pages", "the guest's pages mapping a shared frame (KSM's "
                + "ksm_merging_pages)", GuestCounters::mergingPages);
        guestGauge("samepage_guest_zero_pages", "the guest's pages mapped to the zero frame (KSM's "
                + "ksm_zero_pages)", GuestCounters::zeroPages);
        guestGauge("samepage_guest_profit_bytes", "bytes saved net of the guest's metadata (KSM's "
                + "ksm_process_profit)", GuestCounters::profit);
        Info info = Info.builder().name("samepage_info").help("the daemon process: pid, Java runtime")
                .labelNames("pid", "java_version").register(registry);
        info.setLabelValues(Long.toString(ProcessHandle.current().pid()), Runtime.version().toString());
        double startSeconds = startMillis / 1000.0;
        GaugeWithCallback.builder().name("process_start_time_seconds")
                .help("start time of the daemon, seconds since the epoch").callback(cb -> cb.call(startSeconds))
                .register(registry);
        Runtime runtime = Runtime.getRuntime();
        GaugeWithCallback.builder().name("samepage_jvm_heap_used_bytes").help("Java heap in use, bytes")
                .callback(cb -> cb.call(runtime.totalMemory() - runtime.freeMemory())).register(registry);
    }

    /**
     * Registers the KSM policy loop's metrics, read from its last report at scrape time (none before its
     * first step): the predicted and achieved saving, ksmd's CPU-seconds (when known) and per GiB saved
     * (when defined), and the steps that backed off.
     */
    void ksmPolicy(Supplier<KsmPolicyLoop.Report> last, LongSupplier backoffs) {
        policyGauge("samepage_ksm_predicted_saving_bytes", "what the policy loop's last estimate says kernel KSM "
                + "would save, bytes", last, r -> r.predictedSavingBytes());
        policyGauge("samepage_ksm_achieved_saving_bytes", "what kernel KSM saves, (pages_sharing + ksm_zero_pages) "
                + "* 4096, at the policy loop's last step", last, r -> r.achievedSavingBytes());
        CounterWithCallback.builder().name("samepage_ksmd_cpu_seconds_total").help("ksmd's CPU time since boot, "
                + "seconds, at the policy loop's last step (absent while unknown)").callback(cb -> {
                    KsmPolicyLoop.Report r = last.get();
                    if (r != null && r.ksmdCpuSecondsTotal() >= 0) {
                        cb.call(r.ksmdCpuSecondsTotal());
                    }
                }).register(registry);
        policyGauge("samepage_ksmd_cpu_seconds_per_gib_saved", "ksmd's CPU-seconds since boot per GiB kernel KSM "
                + "saves (absent while nothing is saved or the CPU time is unknown)", last,
                KsmPolicyLoop.Report::ksmdCpuSecondsPerGibSaved);
        CounterWithCallback.builder().name("samepage_ksm_policy_backoffs_total").help("policy loop steps that "
                + "slowed kernel KSM for ksmd_cpu_budget_percent").callback(cb -> cb.call(backoffs.getAsLong()))
                .register(registry);
    }

    /**
     * Registers the estimate of the live sources, read from the last one at scrape time: KSM's counters
     * at steady state over all of them ({@code samepage_live_*}) and each source's pages read and
     * {@code merging_pages} (label {@code source}). They are estimated, not merged: the engine's metrics
     * above cover the file sources only.
     */
    void liveSources(Supplier<SourceEstimate.Result> last) {
        liveGauge("samepage_live_pages_read", "resident pages of the live sources read at the last estimate",
                last, e -> e.pagesRead());
        liveGauge("samepage_live_pages_shared", "KSM's pages_shared the live sources would reach, estimated",
                last, e -> e.pagesShared());
        liveGauge("samepage_live_pages_sharing", "KSM's pages_sharing the live sources would reach, estimated",
                last, e -> e.pagesSharing());
        liveGauge("samepage_live_ksm_zero_pages", "KSM's ksm_zero_pages the live sources would reach, estimated",
                last, e -> e.ksmZeroPages());
        liveGauge("samepage_live_saving_bytes", "(pages_sharing + ksm_zero_pages) * 4096 the live sources would "
                + "save, estimated", last, e -> e.savedPages() * 4096);
        GaugeWithCallback.builder().name("samepage_live_source_merging_pages").help("a live source's pages KSM "
                + "would map to a shared frame, estimated (KSM's ksm_merging_pages)").labelNames("source")
                .callback(cb -> {
                    SourceEstimate.Result r = last.get();
                    if (r != null) {
                        for (PageDigestEstimator.GuestEstimate g : r.estimate().guests()) {
                            cb.call(g.mergingPages(), g.name());
                        }
                    }
                }).register(registry);
    }

    private void liveGauge(String name, String help, Supplier<SourceEstimate.Result> last,
            ToLongFunction<PageDigestEstimator.Estimate> value) {
        GaugeWithCallback.builder().name(name).help(help).callback(cb -> {
            SourceEstimate.Result r = last.get();
            if (r != null) {
                cb.call(value.applyAsLong(r.estimate()));
            }
        }).register(registry);
    }

    private void policyGauge(String name, String help, Supplier<KsmPolicyLoop.Report> last,
            ToDoubleFunction<KsmPolicyLoop.Report> value) {
        GaugeWithCallback.builder().name(name).help(help).callback(cb -> {
            KsmPolicyLoop.Report r = last.get();
            if (r != null && !Double.isNaN(value.applyAsDouble(r))) {
                cb.call(value.applyAsDouble(r));
            }
        }).register(registry);
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
        named.put("frame_release_failures", c.frameReleaseFailures());
        named.put("frames_withheld", c.framesWithheld());
        long[] values = new long[CountersFile.COUNTER_NAMES.size()];
        for (int id = 0; id < values.length; id++) {
            values[id] = named.getOrDefault(CountersFile.COUNTER_NAMES.get(id), 0L);
        }
        return values;
    }

    /** The {@code /metrics} body, Prometheus' text format 0.0.4 ({@link #CONTENT_TYPE}), from one engine snapshot. */
    synchronized String prometheusText() {
        scraped = engine.counters();
        List<Guest> guests = engine.guests();
        scrapedGuests = new ArrayList<>(guests.size());
        for (Guest guest : guests) {
            scrapedGuests.add(guest.counters());
        }
        ByteArrayOutputStream out = new ByteArrayOutputStream(8192);
        try {
            TEXT.write(out, registry.scrape());
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        } finally {
            scraped = null;
            scrapedGuests = null;
        }
        return out.toString(StandardCharsets.UTF_8);
    }

    private void engineGauge(String name, String help, ToLongFunction<EngineCounters> value) {
        GaugeWithCallback.builder().name(name).help(help).callback(cb -> cb.call(value.applyAsLong(scraped)))
                .register(registry);
    }

    private void engineCounter(String name, String help, ToLongFunction<EngineCounters> value) {
        CounterWithCallback.builder().name(name).help(help).callback(cb -> cb.call(value.applyAsLong(scraped)))
                .register(registry);
    }

    private void guestGauge(String name, String help, ToLongFunction<GuestCounters> value) {
        GaugeWithCallback.builder().name(name).help(help).labelNames("guest", "domain").callback(cb -> {
            for (GuestCounters g : scrapedGuests) {
                cb.call(value.applyAsLong(g), g.name(), g.domain());
            }
        }).register(registry);
    }
}
