package io.samepage.daemon;

import io.samepage.core.DedupException;
import io.samepage.core.ScanKnobs;
import io.samepage.daemon.DaemonException.Kind;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * A running daemon's reload (SIGHUP to {@code samepage daemon}): the new config is the whole truth, so a
 * knob it leaves out goes back to its default. What can change live changes: every KSM knob (under the
 * engine's rules: {@code max_page_sharing} only while nothing is shared, {@code pages_to_scan} not
 * while the advisor steers it) and {@code estimate_interval_seconds}. A change to anything the daemon
 * was built from (the sources, {@code domain_per_source}, {@code pool_mib}, {@code metrics_port}, {@code metrics_address},
 * {@code counters_file}, the {@code ksm_*} keys of the KSM policy) needs a restart and is refused. A reload is all or nothing: refused, it leaves
 * the daemon as it was, knobs restored; so does an error while setting them (an {@link OutOfMemoryError}), since
 * what allocates (the list of changes, the message) is done before the first knob changes, and nothing after.
 *
 * <p>Not thread safe: {@link Daemon#reload} serialises reloads.
 */
final class Reload {

    private Reload() {
    }

    /**
     * Applies {@code config} to the running daemon's {@code knobs} and {@code refresher}.
     *
     * @return what changed, on one line: {@code name old -> new, ...}, or {@code nothing changed}
     * @throws DaemonException {@link Kind#CONFIG} naming what needs a restart or the knob refused;
     *                         nothing changed then, as on any other throw (knobs restored)
     */
    static String apply(Daemon.Context context, KsmPolicyConfig ksmPolicy, long estimateIntervalSeconds, ScanKnobs knobs,
            Refresher refresher, DaemonConfig config) {
        List<String> restart = new ArrayList<>();
        if (!config.sources().equals(context.sources())) {
            restart.add("source");
        }
        if (config.domainPerSource() != context.domainPerSource()) {
            restart.add("domain_per_source");
        }
        long poolMib = config.poolMib() != null ? config.poolMib() : Daemon.Context.DEFAULT_POOL_MIB;
        if (poolMib != context.poolMib()) {
            restart.add("pool_mib");
        }
        if (config.metricsPort() != context.metricsPort()) {
            restart.add("metrics_port");
        }
        if (!config.metricsAddress().equals(context.metricsAddress())) {
            restart.add("metrics_address");
        }
        if (!config.countersFile().toAbsolutePath().equals(context.countersFile().toAbsolutePath())) {
            restart.add("counters_file");
        }
        if (!config.ksmPolicy().equals(ksmPolicy)) {
            restart.add("ksm_* (the KSM policy)");
        }
        if (!restart.isEmpty()) {
            throw new DaemonException(Kind.CONFIG, String.join(", ", restart) + " changed: "
                    + (restart.size() == 1 ? "it takes" : "they take") + " effect only with a restart");
        }
        Map<String, String> changes = knobChanges(knobs, config);
        Map<String, String> old = new LinkedHashMap<>();
        for (String name : changes.keySet()) {
            old.put(name, knobs.get(name));
        }
        // Everything that allocates is done before the first change: an OutOfMemoryError from here on
        // would leave the knobs changed and the interval not, half a reload.
        List<String> said = new ArrayList<>();
        changes.forEach((name, value) -> said.add(name + " " + old.get(name) + " -> " + value));
        long interval = config.estimateIntervalSeconds();
        if (interval != estimateIntervalSeconds) {
            said.add("estimate_interval_seconds " + estimateIntervalSeconds + " -> " + interval
                    + (refresher != null ? "" : " (no live source to re-read)"));
        }
        String changed = said.isEmpty() ? "nothing changed" : String.join(", ", said);
        try {
            set(knobs, changes);
        } catch (RuntimeException | Error e) {
            try {
                set(knobs, old);
            } catch (RuntimeException | Error restoring) {
                if (restoring != e) {       // the JVM may throw one preallocated OutOfMemoryError twice
                    e.addSuppressed(restoring);
                }
            }
            if (e instanceof DedupException refused) {
                throw new DaemonException(Kind.CONFIG, refused.getMessage(), refused);
            }
            throw e;
        }
        if (refresher != null) {
            refresher.estimateIntervalSeconds(interval);    // at least 1, as the config checked: it cannot throw
        }
        return changed;
    }

    /**
     * The knobs whose value {@code config} changes, in the order they can be set: {@code advisor_mode}
     * first (it decides whether {@code pages_to_scan} may be set), {@code pages_to_scan} left out while the
     * advisor steers it.
     */
    private static Map<String, String> knobChanges(ScanKnobs knobs, DaemonConfig config) {
        ScanKnobs target = new ScanKnobs();
        config.applyTo(target);
        Map<String, String> changes = new LinkedHashMap<>();
        List<String> order = new ArrayList<>(ScanKnobs.NAMES);
        order.remove("advisor_mode");
        order.addFirst("advisor_mode");
        for (String name : order) {
            boolean steered = name.equals("pages_to_scan") && target.get("advisor_mode").equals("scan-time");
            if (!steered && !Objects.equals(target.get(name), knobs.get(name))) {
                changes.put(name, target.get(name));
            }
        }
        return changes;
    }

    /** Sets {@code values} in order; the advisor's range as one change, so min and max may cross. */
    private static void set(ScanKnobs knobs, Map<String, String> values) {
        for (Map.Entry<String, String> knob : values.entrySet()) {
            switch (knob.getKey()) {
                case "advisor_min_pages_to_scan", "advisor_max_pages_to_scan" -> knobs.advisorPagesToScanRange(
                        Integer.parseInt(values.getOrDefault("advisor_min_pages_to_scan",
                                knobs.get("advisor_min_pages_to_scan"))),
                        Integer.parseInt(values.getOrDefault("advisor_max_pages_to_scan",
                                knobs.get("advisor_max_pages_to_scan"))));
                default -> knobs.set(knob.getKey(), knob.getValue());
            }
        }
    }
}
