package io.samepage.host;

import java.nio.file.Path;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.OptionalDouble;
import java.util.OptionalLong;
import java.util.TreeMap;

/**
 * One reading of every file in {@code /sys/kernel/mm/ksm}, under the file names: the knobs
 * ({@link KsmKnob}), the counters ({@link #COUNTERS}, defined in ARCHITECTURE.md, "Counters") and any
 * file this Samepage does not know, as the kernel printed it. A choice file such as {@code advisor_mode}
 * ({@code [none] scan-time}) reads as the selected word ({@code none}).
 *
 * <p>The files are read one after another, not atomically: while ksmd runs, counters read a moment
 * apart may disagree slightly, as they do for {@code grep . /sys/kernel/mm/ksm/*}. Immutable.
 */
public final class KsmStatus {

    /** The read-only files of {@code /sys/kernel/mm/ksm}, in ARCHITECTURE.md's order. */
    public static final List<String> COUNTERS = List.of("pages_shared", "pages_sharing", "pages_unshared",
            "pages_volatile", "full_scans", "pages_scanned", "pages_skipped", "ksm_zero_pages",
            "stable_node_chains", "stable_node_dups", "general_profit");

    private final Path directory;
    private final Map<String, String> values;

    /** Orders {@code files}: knobs in {@link KsmKnob} order, then {@link #COUNTERS}, then other names sorted. */
    KsmStatus(Path directory, Map<String, String> files) {
        this.directory = directory;
        Map<String, String> rest = new TreeMap<>(files);
        Map<String, String> ordered = new LinkedHashMap<>();
        for (KsmKnob knob : KsmKnob.values()) {
            move(knob.sysfsName(), rest, ordered);
        }
        for (String counter : COUNTERS) {
            move(counter, rest, ordered);
        }
        ordered.putAll(rest);
        this.values = Collections.unmodifiableMap(ordered);
    }

    private static void move(String name, Map<String, String> from, Map<String, String> to) {
        String value = from.remove(name);
        if (value != null) {
            to.put(name, value);
        }
    }

    /** The KSM directory this was read from. */
    public Path directory() {
        return directory;
    }

    /** Every file's value by file name: knobs, then counters, then unknown files. */
    public Map<String, String> values() {
        return values;
    }

    /** The value of file {@code name}, if this kernel has it. */
    public Optional<String> value(String name) {
        return Optional.ofNullable(values.get(name));
    }

    /** The value of {@code knob}, if this kernel has it. */
    public Optional<String> value(KsmKnob knob) {
        return value(knob.sysfsName());
    }

    /** The value of file {@code name} as a number, if this kernel has it and it is a (signed) decimal. */
    public OptionalLong number(String name) {
        String value = values.get(name);
        if (value == null || !value.matches("-?[0-9]{1,19}")) {
            return OptionalLong.empty();
        }
        try {
            return OptionalLong.of(Long.parseLong(value));
        } catch (NumberFormatException tooLarge) {
            return OptionalLong.empty();
        }
    }

    /** A counter or numeric knob; 0 if this kernel lacks it (older kernels lack ksm_zero_pages). */
    public long numberOrZero(String name) {
        return number(name).orElse(0);
    }

    public long pagesShared() {
        return numberOrZero("pages_shared");
    }

    public long pagesSharing() {
        return numberOrZero("pages_sharing");
    }

    public long ksmZeroPages() {
        return numberOrZero("ksm_zero_pages");
    }

    /** {@code run}: 0 stopped, 1 running, 2 unmerged and stopped. */
    public long run() {
        return numberOrZero(KsmKnob.RUN.sysfsName());
    }

    /** True if this kernel has the scan-time advisor (Linux 6.9 and later). */
    public boolean hasAdvisor() {
        return values.containsKey(KsmKnob.ADVISOR_MODE.sysfsName());
    }

    /** True if the scan-time advisor steers {@code pages_to_scan}. */
    public boolean advisorScanTime() {
        return KsmKnob.ADVISOR_SCAN_TIME.equals(values.get(KsmKnob.ADVISOR_MODE.sysfsName()));
    }

    /** Memory that merging freed: {@code (pages_sharing + ksm_zero_pages) x 4096}, in bytes. */
    public long savedBytes() {
        return (pagesSharing() + ksmZeroPages()) * KernelKsm.PAGE_SIZE;
    }

    /** {@code pages_sharing / pages_shared}: pages per KSM page; empty while nothing is shared. */
    public OptionalDouble sharingRatio() {
        long shared = pagesShared();
        return shared == 0 ? OptionalDouble.empty() : OptionalDouble.of((double) pagesSharing() / shared);
    }

    /** A sysfs choice, {@code [none] scan-time}, as its selected word; any other text trimmed. */
    static String normalize(String text) {
        String trimmed = text.strip();
        int open = trimmed.indexOf('[');
        int close = trimmed.indexOf(']', open + 1);
        if (open >= 0 && close > open) {
            return trimmed.substring(open + 1, close);
        }
        return trimmed;
    }
}
