package io.samepage.host;

import java.util.Optional;

/**
 * The writable files of {@code /sys/kernel/mm/ksm}, each with the range its sysfs write handler in
 * mm/ksm.c accepts (and, for the advisor, the range that makes sense: see below), its unit and the
 * value a booted kernel starts with. Everything else in that directory is a counter.
 *
 * <p>Values are written as canonical decimals: digits only, no sign, no leading zeros. The kernel's
 * parsers ({@code kstrtouint}, {@code kstrtobool}) also take {@code +7}, {@code y} or {@code on}; Samepage
 * takes only the form the kernel prints, so what {@code ksm status} shows can be written back.
 *
 * <p>Where Samepage is stricter than the kernel, it is because the kernel would accept a value that
 * silently breaks KSM: {@code advisor_max_cpu} is a percentage of one CPU (the kernel takes any
 * unsigned long, and 0 would stop the advisor from scanning), and the advisor's page bounds must be at
 * least 1 (0 would let it scan nothing). The engine's {@code ScanKnobs} has these two rules too.
 *
 * <p>The declaration order is the order {@code ksm status} lists them; {@link #writeStage(String)}
 * gives the order a batch writes them in.
 */
public enum KsmKnob {

    RUN("run", Type.RUN, 0, 2, "0",
            "0 stops ksmd, 1 runs it, 2 stops it and unmerges every merged page; 4 (KSM_RUN_OFFLINE) is "
                    + "the kernel's own flag during memory hot-remove and is refused"),
    PAGES_TO_SCAN("pages_to_scan", Type.UNSIGNED, 0, Limits.UINT_MAX, "100",
            "pages ksmd visits per batch, 0 to 4294967295; refused while advisor_mode=scan-time steers it"),
    SLEEP_MILLISECS("sleep_millisecs", Type.UNSIGNED, 0, Limits.UINT_MAX, "20",
            "milliseconds ksmd sleeps between batches, 0 to 4294967295"),
    MAX_PAGE_SHARING("max_page_sharing", Type.UNSIGNED, 2, Integer.MAX_VALUE, "256",
            "pages that may map one KSM page before a duplicate KSM page starts a chain, 2 to 2147483647; "
                    + "a change is refused while pages_shared > 0 (unmerge first: run=2)"),
    MERGE_ACROSS_NODES("merge_across_nodes", Type.BOOLEAN, 0, 1, "1",
            "1 merges pages of different NUMA nodes, 0 only within a node; a change is refused while "
                    + "pages_shared > 0 (unmerge first: run=2)"),
    USE_ZERO_PAGES("use_zero_pages", Type.BOOLEAN, 0, 1, "0",
            "1 maps all-zero pages to the kernel's zero page (counted in ksm_zero_pages), 0 merges them "
                    + "like any other page"),
    SMART_SCAN("smart_scan", Type.BOOLEAN, 0, 1, "1",
            "1 skips pages that stayed unmergeable over several scans, 0 visits every page every scan"),
    STABLE_NODE_CHAINS_PRUNE_MILLISECS("stable_node_chains_prune_millisecs", Type.UNSIGNED, 0, Limits.UINT_MAX,
            "2000", "milliseconds between prunes of stale chain entries, 0 to 4294967295"),
    ADVISOR_MODE("advisor_mode", Type.CHOICE, 0, 0, "none",
            "none, or scan-time: the kernel then sets pages_to_scan itself to reach "
                    + "advisor_target_scan_time (Linux 6.9 and later)"),
    ADVISOR_MAX_CPU("advisor_max_cpu", Type.UNSIGNED, 1, 100, "70",
            "the advisor's CPU cap for ksmd, in percent of one CPU, 1 to 100"),
    ADVISOR_MIN_PAGES_TO_SCAN("advisor_min_pages_to_scan", Type.UNSIGNED, 1, Long.MAX_VALUE, "500",
            "the least pages_to_scan the advisor sets, at least 1"),
    ADVISOR_MAX_PAGES_TO_SCAN("advisor_max_pages_to_scan", Type.UNSIGNED, 1, Long.MAX_VALUE, "30000",
            "the most pages_to_scan the advisor sets, at least advisor_min_pages_to_scan"),
    ADVISOR_TARGET_SCAN_TIME("advisor_target_scan_time", Type.UNSIGNED, 1, Long.MAX_VALUE, "200",
            "the time the advisor aims at for one full scan, in seconds, at least 1");

    /** The values {@code advisor_mode} takes. */
    public static final String ADVISOR_NONE = "none";
    public static final String ADVISOR_SCAN_TIME = "scan-time";

    /** KSM_RUN_OFFLINE in mm/ksm.c: set by the kernel while memory goes offline, never by a user. */
    static final long RUN_OFFLINE = 4;

    private enum Type { RUN, UNSIGNED, BOOLEAN, CHOICE }

    /** Bounds of the kernel's C types. */
    private static final class Limits {
        static final long UINT_MAX = 0xFFFF_FFFFL;
    }

    private final String sysfsName;
    private final Type type;
    private final long min;
    private final long max;
    private final String bootDefault;
    private final String help;

    KsmKnob(String sysfsName, Type type, long min, long max, String bootDefault, String help) {
        this.sysfsName = sysfsName;
        this.type = type;
        this.min = min;
        this.max = max;
        this.bootDefault = bootDefault;
        this.help = help;
    }

    /** The file name in {@code /sys/kernel/mm/ksm}. */
    public String sysfsName() {
        return sysfsName;
    }

    /** The value a freshly booted kernel has. */
    public String bootDefault() {
        return bootDefault;
    }

    /** What the knob does, its unit and its range, in one sentence without a final period. */
    public String help() {
        return help;
    }

    /** The knob whose file is {@code name}, if {@code name} is a knob. */
    public static Optional<KsmKnob> bySysfsName(String name) {
        for (KsmKnob knob : values()) {
            if (knob.sysfsName.equals(name)) {
                return Optional.of(knob);
            }
        }
        return Optional.empty();
    }

    /**
     * Checks {@code value} against this knob's own range and returns it in canonical form.
     *
     * @throws KernelKsmException of kind {@link KernelKsmException.Kind#INVALID}, whose message starts
     *     with {@code name=value:} and says what the knob takes
     */
    public String canonical(String value) {
        return switch (type) {
            case CHOICE -> {
                if (!value.equals(ADVISOR_NONE) && !value.equals(ADVISOR_SCAN_TIME)) {
                    throw invalid(value, "must be none or scan-time");
                }
                yield value;
            }
            case BOOLEAN -> {
                if (!value.equals("0") && !value.equals("1")) {
                    throw invalid(value, "must be 0 or 1");
                }
                yield value;
            }
            case RUN -> {
                long run = number(value);
                if (run == RUN_OFFLINE) {
                    throw invalid(value, "4 is KSM_RUN_OFFLINE, which only the kernel sets while memory is "
                            + "hot-removed; write 0 (stop), 1 (run) or 2 (unmerge all)");
                }
                if (run > max) {
                    throw invalid(value, "must be 0 (stop), 1 (run) or 2 (unmerge all)");
                }
                yield Long.toString(run);
            }
            case UNSIGNED -> {
                long n = number(value);
                if (n < min || n > max) {
                    throw invalid(value, range());
                }
                yield Long.toString(n);
            }
        };
    }

    /**
     * When a batch writes this knob: stopping first, so nothing scans with half-set knobs and the stable
     * tree can be emptied; then the knobs that need an empty stable tree; then the advisor's bounds, since
     * switching {@code advisor_mode} to scan-time sets {@code pages_to_scan} to the minimum; then
     * {@code advisor_mode}, since switching it resets {@code pages_to_scan}; then the rate knobs; and
     * {@code run=1} last.
     */
    int writeStage(String canonicalValue) {
        return switch (this) {
            case RUN -> canonicalValue.equals("1") ? 5 : 0;
            case MAX_PAGE_SHARING, MERGE_ACROSS_NODES -> 1;
            case ADVISOR_MAX_CPU, ADVISOR_MIN_PAGES_TO_SCAN, ADVISOR_MAX_PAGES_TO_SCAN, ADVISOR_TARGET_SCAN_TIME -> 2;
            case ADVISOR_MODE -> 3;
            default -> 4;
        };
    }

    /** True for the knobs whose change mm/ksm.c refuses (EBUSY) while pages are shared. */
    boolean needsEmptyStableTree() {
        return this == MAX_PAGE_SHARING || this == MERGE_ACROSS_NODES;
    }

    private String range() {
        return "must be " + min + " to " + max;
    }

    private long number(String value) {
        String rule = type == Type.RUN ? "must be 0 (stop), 1 (run) or 2 (unmerge all)" : range();
        if (value.isEmpty() || !value.chars().allMatch(c -> c >= '0' && c <= '9')) {
            throw invalid(value, rule + ", written as decimal digits");
        }
        try {
            return Long.parseLong(value);
        } catch (NumberFormatException tooLarge) {
            throw invalid(value, rule);
        }
    }

    private KernelKsmException invalid(String value, String why) {
        return new KernelKsmException(KernelKsmException.Kind.INVALID, sysfsName + "=" + value + ": " + why);
    }
}
