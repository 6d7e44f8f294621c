package io.samepage.host;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * A ksmtuned-style policy for kernel KSM, run once: should ksmd merge at all, and how fast?
 *
 * <p><b>Whether.</b> It finds the mergeable processes ({@link MergeableProcesses}) and estimates what
 * KSM would save on their resident memory ({@link MergeableEstimate}: each page read once into a
 * digest; {@code pages_sharing + ksm_zero_pages} at steady state under the kernel's
 * {@code max_page_sharing} and {@code use_zero_pages}). KSM runs only if both the saved share of the
 * pages read reaches {@link Policy#minDuplicatePercent()} (default 5%) and the estimated saving reaches
 * {@link Policy#minSavingBytes()} (default 64 MiB): below either, ksmd's CPU time and the copy-on-write faults on merged pages buy too
 * little. Then KSM stops: {@code run=2} if pages are merged (they are unmerged, so no write to them
 * faults any more), otherwise {@code run=0}. This differs from ksmtuned, which stops KSM whenever the
 * memory committed to QEMU leaves free memory above its threshold: Samepage merges when it pays, since
 * the memory saved is room for more guests.
 *
 * <p><b>How fast.</b> Where the kernel has it (Linux 6.9 and later), the scan-time advisor
 * ({@code advisor_mode=scan-time}): the kernel itself sets {@code pages_to_scan} so that one full scan
 * of the mergeable memory takes {@code advisor_target_scan_time} seconds, within
 * {@code advisor_max_cpu}. It sizes the rate to the mergeable memory, which is what ksmtuned
 * approximates. Otherwise, or with {@link Rate#KSMTUNED}, ksmtuned's formula (its defaults from
 * ksmtuned.conf): the threshold is {@code max(MemTotal x 20%, 2048 KiB)}; if free memory
 * ({@link HostMemory}) is below it, {@code pages_to_scan} grows by 300, otherwise it shrinks by 50,
 * kept within 64 to 1250; {@code sleep_millisecs = max(10, 10 x 16 GiB / MemTotal)}, 10 ms per batch
 * on a 16 GiB host, longer on smaller ones. Last, {@code run=1}.
 *
 * <p>Stateless; {@link #decide} is a pure function, so the policy is tested without a kernel.
 */
public final class KsmTuner {

    /** How the scan rate is set once KSM is to run. */
    public enum Rate {
        /** The kernel's scan-time advisor steers {@code pages_to_scan}. */
        ADVISOR,
        /** ksmtuned's formula sets {@code pages_to_scan} and {@code sleep_millisecs}. */
        KSMTUNED
    }

    static final int NPAGES_BOOST = 300;
    static final int NPAGES_DECAY = -50;
    static final int NPAGES_MIN = 64;
    static final int NPAGES_MAX = 1250;
    static final int SLEEP_MSEC = 10;
    static final int THRES_COEF_PERCENT = 20;
    static final long THRES_CONST_KIB = 2048;
    /** The page count the kernel gives {@code pages_to_scan} when {@code advisor_mode} returns to none. */
    static final long PAGES_TO_SCAN_AFTER_ADVISOR = 100;

    private static final double MIB = 1 << 20;

    /**
     * The thresholds and limits of one run.
     *
     * @param minDuplicatePercent the least duplicate share of the pages read, 0 to 100
     * @param minSavingBytes the least estimated saving, in bytes
     * @param budgetPages the most pages the estimate reads, 1 to {@link MergeableEstimate#MAX_BUDGET_PAGES}
     * @param rate how to set the scan rate; null for the advisor where the kernel has it, else ksmtuned
     * @param targetScanTimeSeconds {@code advisor_target_scan_time} to set with the advisor; null keeps it
     */
    public record Policy(double minDuplicatePercent, long minSavingBytes, long budgetPages, Rate rate,
                         Long targetScanTimeSeconds) {

        public static final double DEFAULT_MIN_DUPLICATE_PERCENT = 5;
        public static final long DEFAULT_MIN_SAVING_BYTES = 64L << 20;
        public static final long DEFAULT_BUDGET_PAGES = (256L << 20) / KernelKsm.PAGE_SIZE;

        public Policy {
            if (!(minDuplicatePercent >= 0 && minDuplicatePercent <= 100)) {
                throw new IllegalArgumentException("the least duplicate share must be 0 to 100 percent, not "
                        + minDuplicatePercent);
            }
            if (minSavingBytes < 0) {
                throw new IllegalArgumentException("the least saving must not be negative, not " + minSavingBytes);
            }
            if (budgetPages < 1 || budgetPages > MergeableEstimate.MAX_BUDGET_PAGES) {
                throw new IllegalArgumentException("the page budget must be 1 to "
                        + MergeableEstimate.MAX_BUDGET_PAGES + ", not " + budgetPages);
            }
            if (targetScanTimeSeconds != null && targetScanTimeSeconds < 1) {
                throw new IllegalArgumentException("advisor_target_scan_time must be at least 1 second, not "
                        + targetScanTimeSeconds);
            }
        }

        /** The defaults: 5%, 64 MiB, 256 MiB read, the advisor where the kernel has it, target kept. */
        public static Policy defaults() {
            return new Policy(DEFAULT_MIN_DUPLICATE_PERCENT, DEFAULT_MIN_SAVING_BYTES, DEFAULT_BUDGET_PAGES, null,
                    null);
        }
    }

    /** One knob decision: its value now, the value chosen (the same if kept), and why. */
    public record Step(KsmKnob knob, String oldValue, String newValue, String reason) {
        public boolean changes() {
            return !oldValue.equals(newValue);
        }
    }

    /** Whether KSM is to merge, why, and the knob decisions in the order they were taken. */
    public record Plan(boolean merge, String reason, List<Step> steps) {

        /** The knobs to write, by sysfs name: the steps that change a value. */
        public Map<String, String> writes() {
            Map<String, String> writes = new LinkedHashMap<>();
            for (Step step : steps) {
                if (step.changes()) {
                    writes.put(step.knob().sysfsName(), step.newValue());
                }
            }
            return writes;
        }
    }

    /** Everything one run saw, decided and (unless a dry run) wrote. */
    public record Report(boolean dryRun, MergeableProcesses.Found mergeable, MergeableEstimate.Potential potential,
                         HostMemory memory, Plan plan, List<KnobChange> written) {
    }

    private KsmTuner() {
    }

    /**
     * Looks, decides and, unless {@code dryRun}, writes the plan through {@link KernelKsm#set}. The
     * pages are read with {@link ProcessMemory}, from this machine's processes, so {@code ksm} must look
     * at {@link KernelKsm#PROC_DIRECTORY}; its KSM directory may be any.
     *
     * @throws KernelKsmException as {@link KernelKsm#status()} and {@link KernelKsm#set} do, and
     *     {@code INVALID} if the policy asks for the advisor on a kernel without it
     * @throws IllegalArgumentException if {@code ksm} looks at another procfs
     */
    public static Report tune(KernelKsm ksm, Policy policy, boolean dryRun) {
        if (!ksm.procDirectory().equals(KernelKsm.PROC_DIRECTORY)) {
            throw new IllegalArgumentException("tuning reads this machine's processes through ProcessMemory, so "
                    + "it needs a KernelKsm over " + KernelKsm.PROC_DIRECTORY + ", not " + ksm.procDirectory());
        }
        KsmStatus status = ksm.status();
        HostMemory memory = HostMemory.read(ksm.procDirectory());
        MergeableProcesses.Found found = MergeableProcesses.find(ksm);
        MergeableEstimate.Potential potential = MergeableEstimate.estimate(found.processes(), policy.budgetPages(),
                MergeableEstimate.maxPageSharing(status, 0), MergeableEstimate.useZeroPages(status));
        Plan plan = decide(status, memory, found.processes().size(), potential, policy);
        Map<String, String> writes = plan.writes();
        List<KnobChange> written = dryRun || writes.isEmpty() ? List.of() : ksm.set(writes);
        return new Report(dryRun, found, potential, memory, plan, written);
    }

    /** The policy of the class comment, on what was seen. */
    static Plan decide(KsmStatus status, HostMemory memory, int mergeableProcesses,
                       MergeableEstimate.Potential potential, Policy policy) {
        List<Step> steps = new ArrayList<>();
        if (mergeableProcesses == 0 || potential.pagesRead() == 0) {
            String reason = mergeableProcesses == 0 ? "no process has mergeable memory, so ksmd has nothing to scan"
                    : "the mergeable regions have no resident page that could be read";
            stop(status, steps, "nothing to merge");
            return new Plan(false, reason, List.copyOf(steps));
        }
        double percent = potential.duplicatePercent();
        long saving = potential.estimatedSavingBytes();
        boolean shareOk = percent >= policy.minDuplicatePercent();
        boolean savingOk = saving >= policy.minSavingBytes();
        String reason = String.format(Locale.ROOT, "KSM would save %.1f%% of the pages read (%s %.1f%%), "
                        + "about %.2f MiB (%s %.2f MiB)", percent, shareOk ? "at least" : "below",
                policy.minDuplicatePercent(), saving / MIB, savingOk ? "at least" : "below",
                policy.minSavingBytes() / MIB);
        if (!shareOk || !savingOk) {
            stop(status, steps, "merging does not pay");
            return new Plan(false, reason, List.copyOf(steps));
        }
        Rate rate = policy.rate() != null ? policy.rate() : status.hasAdvisor() ? Rate.ADVISOR : Rate.KSMTUNED;
        if (rate == Rate.ADVISOR) {
            advisor(status, policy, steps);
        } else {
            ksmtuned(status, memory, steps);
        }
        String run = status.value(KsmKnob.RUN).orElse("0");
        steps.add(new Step(KsmKnob.RUN, run, "1", run.equals("1") ? "ksmd runs already" : "start ksmd"));
        return new Plan(true, reason, List.copyOf(steps));
    }

    private static void stop(KsmStatus status, List<Step> steps, String why) {
        String run = status.value(KsmKnob.RUN).orElse("0");
        long shared = status.pagesShared();
        if (shared > 0) {
            steps.add(new Step(KsmKnob.RUN, run, "2", why + ": unmerge the " + shared + " KSM pages (pages_shared) "
                    + "so writes to them stop faulting, and stop ksmd"));
        } else if (run.equals("1")) {
            steps.add(new Step(KsmKnob.RUN, run, "0", why + ": stop ksmd"));
        } else {
            steps.add(new Step(KsmKnob.RUN, run, run, why + ": KSM stays stopped"));
        }
    }

    private static void advisor(KsmStatus status, Policy policy, List<Step> steps) {
        if (!status.hasAdvisor()) {
            throw new KernelKsmException(KernelKsmException.Kind.INVALID, "this kernel has no scan-time advisor ("
                    + status.directory().resolve(KsmKnob.ADVISOR_MODE.sysfsName()) + " arrived in Linux 6.9); "
                    + "use ksmtuned's rate instead");
        }
        String mode = status.value(KsmKnob.ADVISOR_MODE).orElseThrow();
        String target = status.value(KsmKnob.ADVISOR_TARGET_SCAN_TIME).orElse("?");
        if (policy.targetScanTimeSeconds() != null) {
            String wanted = Long.toString(policy.targetScanTimeSeconds());
            steps.add(new Step(KsmKnob.ADVISOR_TARGET_SCAN_TIME, target, wanted, "the full-scan time asked for, "
                    + "in seconds"));
            target = wanted;
        }
        steps.add(new Step(KsmKnob.ADVISOR_MODE, mode, KsmKnob.ADVISOR_SCAN_TIME, "the kernel's scan-time advisor "
                + "sets pages_to_scan so one full scan of the mergeable memory takes advisor_target_scan_time ("
                + target + " s), using at most advisor_max_cpu ("
                + status.value(KsmKnob.ADVISOR_MAX_CPU).orElse("?") + "%) of one CPU"));
    }

    private static void ksmtuned(KsmStatus status, HostMemory memory, List<Step> steps) {
        String pagesNow = status.value(KsmKnob.PAGES_TO_SCAN).orElse("0");
        long npages = status.number(KsmKnob.PAGES_TO_SCAN.sysfsName()).orElse(0);
        if (status.advisorScanTime()) {
            steps.add(new Step(KsmKnob.ADVISOR_MODE, KsmKnob.ADVISOR_SCAN_TIME, KsmKnob.ADVISOR_NONE,
                    "ksmtuned's rate sets pages_to_scan itself; the kernel resets it to "
                            + PAGES_TO_SCAN_AFTER_ADVISOR + " when the advisor stops"));
            npages = PAGES_TO_SCAN_AFTER_ADVISOR;
            pagesNow = Long.toString(npages);
        }
        long totalKib = memory.totalBytes() / 1024;
        long thresholdKib = Math.max(totalKib * THRES_COEF_PERCENT / 100, THRES_CONST_KIB);
        boolean pressure = memory.freeBytes() / 1024 < thresholdKib;
        long next = Math.clamp(npages + (pressure ? NPAGES_BOOST : NPAGES_DECAY), NPAGES_MIN, NPAGES_MAX);
        steps.add(new Step(KsmKnob.PAGES_TO_SCAN, pagesNow, Long.toString(next), String.format(Locale.ROOT,
                "ksmtuned: free memory %.1f MiB is %s the threshold %.1f MiB (%d%% of MemTotal, at least %d KiB), "
                        + "so %d pages %s %d, kept within %d to %d", memory.freeBytes() / MIB,
                pressure ? "below" : "not below", thresholdKib / 1024.0, THRES_COEF_PERCENT, THRES_CONST_KIB,
                npages, pressure ? "plus" : "minus", Math.abs(pressure ? NPAGES_BOOST : NPAGES_DECAY), NPAGES_MIN,
                NPAGES_MAX)));
        long sleep = Math.max(SLEEP_MSEC, SLEEP_MSEC * (16L << 20) / Math.max(totalKib, 1));
        steps.add(new Step(KsmKnob.SLEEP_MILLISECS, status.value(KsmKnob.SLEEP_MILLISECS).orElse("?"),
                Long.toString(sleep), String.format(Locale.ROOT, "ksmtuned: %d ms per batch for 16 GiB of RAM, "
                        + "times 16 GiB / MemTotal (%.1f GiB), at least %d", SLEEP_MSEC, totalKib / (1024.0 * 1024),
                SLEEP_MSEC)));
    }
}
