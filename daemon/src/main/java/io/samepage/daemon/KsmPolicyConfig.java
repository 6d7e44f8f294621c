package io.samepage.daemon;

import io.samepage.host.MergeableEstimate;
import io.samepage.host.KsmPolicyLoop;
import io.samepage.host.KsmTuner;
import java.util.Locale;
import java.util.Set;

/**
 * The {@code ksm_*} keys of a daemon config: how the daemon would drive kernel KSM with host-mode's
 * {@link KsmPolicyLoop}, ksmtuned's successor. They are apart from {@link DaemonConfig#KNOB_KEYS}, which
 * set the daemon's own engine: these set the kernel's. Each value is checked as it is parsed, with the
 * rules of {@link KsmTuner.Policy} and {@link KsmPolicyLoop.Context}, so a bad one is refused with its file
 * and line before anything starts.
 *
 * @param mode                 {@code ksm_policy}: off (the default), on, or dry_run (decide and report,
 *                             write nothing)
 * @param policy               the tuner's thresholds and rate: {@code ksm_min_duplicate_percent},
 *                             {@code ksm_min_saving_mib}, {@code ksm_sample_mib}, {@code ksm_rate}
 * @param maxPageSharing       {@code ksm_max_page_sharing}: 2 or more, or 0 to keep the kernel's
 * @param ksmdCpuBudgetPercent {@code ksmd_cpu_budget_percent}: the share of one CPU ksmd may use before
 *                             KSM backs off, above 0 and at most 100
 */
public record KsmPolicyConfig(Mode mode, KsmTuner.Policy policy, long maxPageSharing, double ksmdCpuBudgetPercent) {

    /** The policy keys. */
    public static final Set<String> KEYS = Set.of("ksm_policy", "ksm_min_duplicate_percent", "ksm_min_saving_mib",
            "ksm_sample_mib", "ksm_rate", "ksm_max_page_sharing", "ksmd_cpu_budget_percent");

    /** The page size the sample is counted in, as {@code KernelKsm}'s (package-private there). */
    private static final long PAGE_BYTES = 4096;

    /** Whether the loop runs, and whether it writes. */
    public enum Mode {
        OFF, ON, DRY_RUN;

        /** The config's spelling: {@code off}, {@code on}, {@code dry_run}. */
        public String key() {
            return name().toLowerCase(Locale.ROOT);
        }
    }

    /** The defaults: off, {@link KsmTuner.Policy#defaults()}, the kernel's max_page_sharing, 20% of a CPU. */
    public static KsmPolicyConfig defaults() {
        return new KsmPolicyConfig(Mode.OFF, KsmTuner.Policy.defaults(), KsmPolicyLoop.Context.DEFAULT_MAX_PAGE_SHARING,
                KsmPolicyLoop.Context.DEFAULT_KSMD_CPU_BUDGET_PERCENT);
    }

    /**
     * This config with {@code key} set to {@code value}.
     *
     * @throws IllegalArgumentException saying why the value is refused
     */
    KsmPolicyConfig with(String key, String value) {
        KsmTuner.Policy p = policy;
        return switch (key) {
            case "ksm_policy" -> new KsmPolicyConfig(mode(value), p, maxPageSharing, ksmdCpuBudgetPercent);
            case "ksm_min_duplicate_percent" -> new KsmPolicyConfig(mode, new KsmTuner.Policy(
                    percent(value, true), p.minSavingBytes(), p.budgetPages(), p.rate(), p.targetScanTimeSeconds()),
                    maxPageSharing, ksmdCpuBudgetPercent);
            case "ksm_min_saving_mib" -> new KsmPolicyConfig(mode, new KsmTuner.Policy(p.minDuplicatePercent(),
                    mib(value, 0, Long.MAX_VALUE >> 20), p.budgetPages(), p.rate(), p.targetScanTimeSeconds()),
                    maxPageSharing, ksmdCpuBudgetPercent);
            case "ksm_sample_mib" -> new KsmPolicyConfig(mode, new KsmTuner.Policy(p.minDuplicatePercent(),
                    p.minSavingBytes(), mib(value, 1, MergeableEstimate.MAX_BUDGET_PAGES * PAGE_BYTES >> 20)
                            / PAGE_BYTES, p.rate(), p.targetScanTimeSeconds()),
                    maxPageSharing, ksmdCpuBudgetPercent);
            case "ksm_rate" -> new KsmPolicyConfig(mode, new KsmTuner.Policy(p.minDuplicatePercent(),
                    p.minSavingBytes(), p.budgetPages(), rate(value), p.targetScanTimeSeconds()),
                    maxPageSharing, ksmdCpuBudgetPercent);
            case "ksm_max_page_sharing" -> new KsmPolicyConfig(mode, p, maxPageSharing(value), ksmdCpuBudgetPercent);
            case "ksmd_cpu_budget_percent" -> new KsmPolicyConfig(mode, p, maxPageSharing, percent(value, false));
            default -> throw new IllegalStateException("unhandled key " + key);
        };
    }

    private static Mode mode(String value) {
        return switch (value) {
            case "off" -> Mode.OFF;
            case "on" -> Mode.ON;
            case "dry_run" -> Mode.DRY_RUN;
            default -> throw new IllegalArgumentException("must be off, on or dry_run, not '" + value + "'");
        };
    }

    private static KsmTuner.Rate rate(String value) {
        return switch (value) {
            case "advisor" -> KsmTuner.Rate.ADVISOR;
            case "ksmtuned" -> KsmTuner.Rate.KSMTUNED;
            default -> throw new IllegalArgumentException("must be advisor or ksmtuned, not '" + value + "'");
        };
    }

    /** A percent, 0 to 100, or above 0 to 100 when {@code zeroAllowed} is false. */
    private static double percent(String value, boolean zeroAllowed) {
        double v;
        try {
            v = Double.parseDouble(value);
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("must be a number of percent, not '" + value + "'");
        }
        if (!(zeroAllowed ? v >= 0 : v > 0) || !(v <= 100) || value.chars().anyMatch(Character::isLetter)) {
            throw new IllegalArgumentException("must be " + (zeroAllowed ? "0" : "above 0") + " to 100, not '"
                    + value + "'");
        }
        return v;
    }

    /** Whole MiB, {@code min} to {@code max}, in bytes. */
    private static long mib(String value, long min, long max) {
        long v = whole(value);
        if (v < min || v > max) {
            throw new IllegalArgumentException("must be " + min + " to " + max + " MiB, not " + v);
        }
        return v << 20;
    }

    private static long maxPageSharing(String value) {
        long v = whole(value);
        if (v != 0 && (v < 2 || v > Integer.MAX_VALUE)) {
            throw new IllegalArgumentException("must be 2 to " + Integer.MAX_VALUE
                    + ", or 0 to keep the kernel's, not " + v);
        }
        return v;
    }

    private static long whole(String value) {
        try {
            return Long.parseLong(value);
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("must be a whole number, not '" + value + "'");
        }
    }
}
