package io.samepage.host;

import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Optional;
import java.util.OptionalLong;

/**
 * One process's {@code /proc/PID/ksm_stat}: {@code ksm_rmap_items} (its pages ksmd tracks),
 * {@code ksm_zero_pages}, {@code ksm_merging_pages} and {@code ksm_process_profit}, and any other line
 * as the kernel printed it (recent kernels add {@code ksm_merge_any: no} and {@code ksm_mergeable: no}).
 *
 * <p>Absent when there is no such file to read: the process is gone, the kernel predates Linux 6.1,
 * or this user may not read it. {@link #absentReason()} says which. A kernel thread has an empty
 * {@code ksm_stat}: present, with no values. Immutable.
 */
public final class KsmStat {

    private final long pid;
    private final String absentReason;
    private final Map<String, String> values;

    private KsmStat(long pid, String absentReason, Map<String, String> values) {
        this.pid = pid;
        this.absentReason = absentReason;
        this.values = values;
    }

    /** An absent {@code ksm_stat}, and why. */
    static KsmStat absent(long pid, String reason) {
        return new KsmStat(pid, reason, Map.of());
    }

    /**
     * Parses the file's text: one {@code name value} or {@code name: value} per line. A line without a
     * value keeps the whole line as its name and an empty value.
     */
    static KsmStat parse(long pid, String text) {
        Map<String, String> values = new LinkedHashMap<>();
        for (String line : text.split("\n")) {
            String trimmed = line.strip();
            if (trimmed.isEmpty()) {
                continue;
            }
            int space = trimmed.indexOf(' ');
            String name = space < 0 ? trimmed : trimmed.substring(0, space);
            String value = space < 0 ? "" : trimmed.substring(space + 1).strip();
            if (name.endsWith(":") && name.length() > 1) {
                name = name.substring(0, name.length() - 1);
            }
            values.put(name, value);
        }
        return new KsmStat(pid, null, Collections.unmodifiableMap(values));
    }

    public long pid() {
        return pid;
    }

    /** True if the file was read. */
    public boolean present() {
        return absentReason == null;
    }

    /** Why there is no {@code ksm_stat} to show, if there is none. */
    public Optional<String> absentReason() {
        return Optional.ofNullable(absentReason);
    }

    /** Every line, by name, in the kernel's order; empty if absent. */
    public Map<String, String> values() {
        return values;
    }

    /** The line {@code name} as a number, if present and numeric. */
    public OptionalLong number(String name) {
        String value = values.get(name);
        if (value == null || !value.matches("-?[0-9]{1,18}")) {
            return OptionalLong.empty();
        }
        return OptionalLong.of(Long.parseLong(value));
    }

    /** {@code ksm_rmap_items}: the process's pages that ksmd tracks; empty if absent. */
    public OptionalLong rmapItems() {
        return number("ksm_rmap_items");
    }

    /** {@code ksm_zero_pages}: its pages KSM mapped to the zero page ({@code use_zero_pages}). */
    public OptionalLong zeroPages() {
        return number("ksm_zero_pages");
    }

    /** {@code ksm_merging_pages}: its pages that map a KSM page. */
    public OptionalLong mergingPages() {
        return number("ksm_merging_pages");
    }

    /** {@code ksm_process_profit}: bytes merging saved it, less its rmap items' cost; may be negative. */
    public OptionalLong processProfit() {
        return number("ksm_process_profit");
    }

    /**
     * True if KSM may merge some of this process's memory: {@code ksm_mergeable: yes} (a region was
     * madvised MADV_MERGEABLE), {@code ksm_merge_any: yes} (prctl PR_SET_MEMORY_MERGE), or, on kernels
     * without those lines, {@code ksm_rmap_items > 0} (ksmd has visited its pages).
     */
    public boolean mergeable() {
        return "yes".equals(values.get("ksm_mergeable")) || "yes".equals(values.get("ksm_merge_any"))
                || rmapItems().orElse(0) > 0;
    }

    /** True if this kernel's {@code ksm_stat} says directly whether the process is mergeable. */
    public boolean tellsMergeable() {
        return values.containsKey("ksm_mergeable");
    }
}
