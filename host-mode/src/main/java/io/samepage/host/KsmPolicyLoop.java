package io.samepage.host;

import java.io.IOException;
import java.util.ArrayList;
import java.util.EnumMap;
import java.util.EnumSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.function.LongSupplier;

/**
 * The brain of ksmtuned's successor: a daemon calls {@link #step()} on an interval, and {@link #close()}
 * when it stops. Each step reads kernel KSM, estimates what merging would save under the
 * {@code max_page_sharing} and {@code use_zero_pages} KSM will run with (by default
 * {@link Estimator#DIGESTS}: each resident mergeable page read once into a digest), decides
 * ({@link KsmPolicy#decide}: the tuner's run and rate, {@code max_page_sharing} when KSM allows, the CPU
 * back-off) and, unless a dry run, writes the plan through {@link KernelKsm#set}.
 *
 * <p>The loop remembers each knob's value before its first change, and {@link #restore()} writes those
 * values back, in KSM's safe order ({@link KernelKsm#set}), and only those. A knob is remembered before
 * the batch that writes it, and forgotten after if the batch did not change it: so a batch cut short, by
 * the kernel ({@link KernelKsmException#written()} says how far it got) or by an {@link Error} that says
 * nothing (an {@link OutOfMemoryError}), leaves no change unremembered. Switching {@code advisor_mode} makes
 * the kernel reset {@code pages_to_scan}, so that change remembers {@code pages_to_scan} too. Two knobs
 * cannot always go back: {@code max_page_sharing} while pages are shared (the kernel refuses; restoring it
 * would mean unmerging every page), and {@code pages_to_scan} when the restored advisor steers it. They
 * are left, saying why, in {@link Restored#left()}.
 *
 * <p>ksmd's CPU use is measured between two steps ({@link Ksmd}); the first step has no interval yet.
 *
 * <p>Thread safety: single caller; a daemon steps and closes it from one thread (its agent's).
 */
public final class KsmPolicyLoop implements AutoCloseable {

    private static final double GIB = 1L << 30;

    /** Where an estimate comes from: the mergeable processes and what merging them would save. */
    @FunctionalInterface
    public interface Estimator {
        /**
         * Estimates, reading at most {@code budgetPages}, what KSM would save under {@code maxPageSharing}
         * and {@code useZeroPages} (the values it will run with).
         */
        Estimate estimate(KernelKsm ksm, long budgetPages, int maxPageSharing, boolean useZeroPages);

        /**
         * {@link MergeableProcesses#find} then {@link MergeableEstimate#estimate}: every resident mergeable
         * page read once into a digest, as {@code ksm tune} does.
         */
        Estimator DIGESTS = (ksm, budget, maxPageSharing, useZeroPages) -> {
            MergeableProcesses.Found found = MergeableProcesses.find(ksm);
            return new Estimate(found, MergeableEstimate.estimate(found.processes(), budget, maxPageSharing,
                    useZeroPages));
        };
    }

    /** What an {@link Estimator} found. */
    public record Estimate(MergeableProcesses.Found found, MergeableEstimate.Potential potential) {
    }

    /** ksmd's CPU time so far, in nanoseconds. */
    @FunctionalInterface
    public interface CpuClock {
        long cpuNanos() throws IOException;
    }

    /**
     * One step.
     *
     * @param tuning the tuner's view: what was found, estimated and decided, and the knob changes written
     *     (in a dry run, those that would be, from the plan); {@link KsmTunerText#lines} prints it
     * @param backedOff whether the step slowed KSM for the CPU budget
     * @param cpu ksmd's CPU use against the budget, or why it is unknown
     * @param predictedSavingBytes the estimate's saving: {@code pages_sharing + ksm_zero_pages} that KSM
     *     would reach, in bytes ({@link MergeableEstimate.Potential#estimatedSavingBytes()})
     * @param achievedSavingBytes {@link KsmStatus#savedBytes()} as read at the step's start, the same measure
     * @param ksmdCpuSecondsTotal ksmd's CPU time since boot; negative if unknown
     */
    public record Report(KsmTuner.Report tuning, boolean backedOff, String cpu, long predictedSavingBytes,
                         long achievedSavingBytes, double ksmdCpuSecondsTotal) {

        /** ksmd's CPU-seconds since boot per GiB KSM saves now; NaN if either is unknown or none is saved. */
        public double ksmdCpuSecondsPerGibSaved() {
            return ksmdCpuSecondsTotal < 0 || achievedSavingBytes == 0 ? Double.NaN
                    : ksmdCpuSecondsTotal / (achievedSavingBytes / GIB);
        }

        /** The changes written, or in a dry run those that would be. */
        public List<KnobChange> changes() {
            return tuning.written();
        }

        /** One line per decision ({@link KsmTunerText}), then the saving and the CPU. */
        public List<String> lines() {
            List<String> lines = new ArrayList<>(KsmTunerText.lines(tuning));
            if (tuning.dryRun() && !tuning.written().isEmpty()) {
                lines.add("would write: " + tuning.written());
            }
            lines.add(String.format(Locale.ROOT, "saving: predicted %.2f MiB, achieved %.2f MiB", predictedSavingBytes
                    / (double) (1 << 20), achievedSavingBytes / (double) (1 << 20)));
            lines.add("cpu: " + cpu + (ksmdCpuSecondsTotal < 0 ? "" : String.format(Locale.ROOT,
                    "; %.2f CPU-seconds since boot, %.2f per GiB saved", ksmdCpuSecondsTotal,
                    ksmdCpuSecondsPerGibSaved())));
            return lines;
        }
    }

    /** What {@link #restore()} wrote, and the knobs it left, each with why. */
    public record Restored(List<KnobChange> written, Map<KsmKnob, String> left) {
    }

    private final Context context;
    private final KernelKsm ksm;
    /** Each changed knob's value before its first change, in change order. */
    private final Map<KsmKnob, String> originals = new EnumMap<>(KsmKnob.class);
    private long lastCpuNanos = -1;
    private long lastWallNanos;
    private boolean closed;

    /** A loop on a concluded context ({@link Context#conclude()}). */
    public KsmPolicyLoop(Context context) {
        if (!context.concluded()) {
            throw new IllegalStateException("conclude the context before starting a loop on it");
        }
        this.context = context;
        this.ksm = context.ksm();
    }

    /**
     * One iteration: estimate, read KSM, decide, write (unless a dry run).
     *
     * @throws KernelKsmException as {@link KernelKsm#status()} and {@link KernelKsm#set} do; the knobs a
     *     failed batch wrote are remembered for {@link #restore()}, as after any throw
     * @throws IllegalStateException after {@link #close()}
     */
    public Report step() {
        if (closed) {
            throw new IllegalStateException("the policy loop is closed");
        }
        KsmStatus status = ksm.status();
        Estimate estimate = context.estimator().estimate(ksm, context.policy().budgetPages(),
                MergeableEstimate.maxPageSharing(status, context.maxPageSharing()),
                MergeableEstimate.useZeroPages(status));
        HostMemory memory = HostMemory.read(ksm.procDirectory());
        long wall = context.nanoClock().getAsLong();
        long cpuNanos;
        String cpuUnknown;
        try {
            cpuNanos = context.ksmdCpu().cpuNanos();
            cpuUnknown = lastCpuNanos < 0 ? "the first step has no interval to measure over yet" : null;
        } catch (IOException e) {
            cpuNanos = -1;
            cpuUnknown = "ksmd's CPU time cannot be read: " + KernelKsm.reason(e);
        }
        KsmPolicy.CpuUse use = cpuUnknown == null && wall > lastWallNanos
                ? new KsmPolicy.CpuUse((cpuNanos - lastCpuNanos) / 1e9, (wall - lastWallNanos) / 1e9) : null;
        if (use == null && cpuUnknown == null) {
            cpuUnknown = "no time passed since the last step";
        }
        KsmTuner.Plan tuned = KsmTuner.decide(status, memory, estimate.found().processes().size(),
                estimate.potential(), context.policy());
        KsmPolicy.Decision decision = KsmPolicy.decide(status, tuned, context.maxPageSharing(), use, cpuUnknown,
                context.ksmdCpuBudgetPercent());
        Map<String, String> writes = decision.plan().writes();
        List<KnobChange> changes;
        if (context.dryRun()) {
            changes = wouldWrite(decision.plan());
        } else if (writes.isEmpty()) {
            changes = List.of();
        } else {
            Set<KsmKnob> remembered = rememberBefore(writes, status);
            try {
                changes = ksm.set(writes);
            } catch (KernelKsmException e) {
                forgetUnchanged(remembered, e.written());
                throw e;
            }
            forgetUnchanged(remembered, changes);
        }
        if (cpuNanos >= 0) {
            lastCpuNanos = cpuNanos;
            lastWallNanos = wall;
        }
        KsmTuner.Report tuning = new KsmTuner.Report(context.dryRun(), estimate.found(), estimate.potential(), memory,
                decision.plan(), changes);
        return new Report(tuning, decision.backsOff(), decision.cpu(), estimate.potential().estimatedSavingBytes(),
                status.savedBytes(), cpuNanos < 0 ? -1 : cpuNanos / 1e9);
    }

    /**
     * The knobs changed so far, each with the value it had before the loop's first change; after a step an
     * Error cut short, also those its batch was to write (restored only if they differ from the value kept).
     */
    public Map<KsmKnob, String> originals() {
        return Map.copyOf(originals);
    }

    /**
     * Writes back each changed knob's original value, in KSM's safe order, and forgets it; a knob the
     * kernel would refuse now is left (see the class comment) and kept for a later restore. Steps may
     * follow, and change knobs again.
     *
     * @throws KernelKsmException if the batch fails; the knobs it restored before failing are forgotten, the
     *     rest kept for another restore
     */
    public Restored restore() {
        if (originals.isEmpty()) {
            return new Restored(List.of(), Map.of());
        }
        KsmStatus status = ksm.status();
        Map<KsmKnob, String> left = new EnumMap<>(KsmKnob.class);
        Map<String, String> writes = new LinkedHashMap<>();
        String run = originals.getOrDefault(KsmKnob.RUN, status.value(KsmKnob.RUN).orElse("0"));
        String mode = originals.getOrDefault(KsmKnob.ADVISOR_MODE,
                status.value(KsmKnob.ADVISOR_MODE).orElse(KsmKnob.ADVISOR_NONE));
        for (Map.Entry<KsmKnob, String> original : originals.entrySet()) {
            KsmKnob knob = original.getKey();
            String value = original.getValue();
            if (knob.needsEmptyStableTree() && status.pagesShared() > 0 && !run.equals("2")
                    && !value.equals(status.value(knob).orElse(value))) {
                left.put(knob, status.pagesShared() + " pages are shared (pages_shared) and the kernel refuses a "
                        + "change until they are unmerged; write run=2, then " + knob.sysfsName() + "=" + value);
            } else if (knob == KsmKnob.PAGES_TO_SCAN && mode.equals(KsmKnob.ADVISOR_SCAN_TIME)) {
                originals.remove(knob);
                left.put(knob, "the restored advisor_mode=scan-time steers it");
            } else if (!value.equals(status.value(knob).orElse(value))) {
                writes.put(knob.sysfsName(), value);
            }
        }
        List<KnobChange> written;
        try {
            written = writes.isEmpty() ? List.of() : ksm.set(writes);
        } catch (KernelKsmException e) {
            forget(e.written());
            throw e;
        }
        originals.keySet().retainAll(left.keySet());
        return new Restored(written, Map.copyOf(left));
    }

    /**
     * Ends the loop and restores ({@link #restore()}); a restore whose batch fails is tried once more at
     * once, as a write the kernel refused a moment ago (EBUSY, EINTR) may pass now. Steps are refused
     * from the first call on; each later call restores what is still kept, so a caller may try again,
     * and once nothing is kept a call does nothing.
     *
     * @throws KernelKsmException if the restore fails twice, or leaves a knob unrestored ({@code REFUSED})
     */
    @Override
    public void close() {
        closed = true;
        if (originals.isEmpty()) {
            return;
        }
        List<KnobChange> written = new ArrayList<>();
        Restored restored;
        try {
            restored = restore();
        } catch (KernelKsmException first) {
            written.addAll(first.written());
            try {
                restored = restore();
            } catch (KernelKsmException second) {
                written.addAll(second.written());
                throw new KernelKsmException(second.kind(), second.getMessage(), written, second);
            }
        }
        written.addAll(restored.written());
        List<String> why = new ArrayList<>();
        restored.left().forEach((knob, reason) -> {
            if (originals.containsKey(knob)) {
                why.add(knob.sysfsName() + ": " + reason);
            }
        });
        if (!why.isEmpty()) {
            throw new KernelKsmException(KernelKsmException.Kind.REFUSED, "the policy loop could not restore "
                    + String.join("; ", why), written, null);
        }
    }

    /**
     * Remembers the value in {@code status} of each knob {@code writes} names that is not remembered yet
     * ({@code pages_to_scan} too with {@code advisor_mode}), before the batch: one cut short by an Error (in
     * it, or after it) reports nothing written, and a knob remembered only after it stayed changed after
     * close. Returns those it added, for {@link #forgetUnchanged}.
     */
    private Set<KsmKnob> rememberBefore(Map<String, String> writes, KsmStatus status) {
        Set<KsmKnob> added = EnumSet.noneOf(KsmKnob.class);
        for (String name : writes.keySet()) {
            Optional<KsmKnob> knob = KsmKnob.bySysfsName(name);
            if (knob.isPresent()) {
                rememberNow(knob.get(), status, added);
                if (knob.get() == KsmKnob.ADVISOR_MODE) {      // the kernel resets pages_to_scan when it changes
                    rememberNow(KsmKnob.PAGES_TO_SCAN, status, added);
                }
            }
        }
        return added;
    }

    private void rememberNow(KsmKnob knob, KsmStatus status, Set<KsmKnob> added) {
        Optional<String> now = status.value(knob);
        if (now.isPresent() && !originals.containsKey(knob)) {
            added.add(knob);
            originals.put(knob, now.get());
        }
    }

    /**
     * Forgets each knob of {@code remembered} that {@code written} did not change ({@code pages_to_scan}
     * unless {@code advisor_mode} changed): the loop remembers only what it changed. An Error here leaves
     * one remembered, which {@link #restore()} writes back only if its value differs from the original.
     */
    private void forgetUnchanged(Set<KsmKnob> remembered, List<KnobChange> written) {
        for (KnobChange change : written) {
            if (change.changed()) {
                remembered.remove(change.knob());
                if (change.knob() == KsmKnob.ADVISOR_MODE) {
                    remembered.remove(KsmKnob.PAGES_TO_SCAN);
                }
            }
        }
        originals.keySet().removeAll(remembered);
    }

    private void forget(List<KnobChange> restored) {
        for (KnobChange change : restored) {
            originals.remove(change.knob());
        }
    }

    private static List<KnobChange> wouldWrite(KsmTuner.Plan plan) {
        List<KnobChange> changes = new ArrayList<>();
        for (KsmTuner.Step step : plan.steps()) {
            if (step.changes()) {
                changes.add(new KnobChange(step.knob(), step.oldValue(), step.newValue()));
            }
        }
        changes.sort((a, b) -> Integer.compare(a.knob().writeStage(a.newValue()), b.knob().writeStage(b.newValue())));
        return List.copyOf(changes);
    }

    /**
     * The loop's configuration, validated once by {@link #conclude()}; a concluded context refuses
     * changes. Single writer.
     */
    public static final class Context {

        /** Default CPU budget of ksmd: a fifth of one CPU. */
        public static final double DEFAULT_KSMD_CPU_BUDGET_PERCENT = 20;

        /** Default {@code max_page_sharing}: 0, the kernel's is kept. */
        public static final long DEFAULT_MAX_PAGE_SHARING = 0;

        private KernelKsm ksm = KernelKsm.system();
        private KsmTuner.Policy policy = KsmTuner.Policy.defaults();
        private boolean dryRun;
        private long maxPageSharing = DEFAULT_MAX_PAGE_SHARING;
        private double ksmdCpuBudgetPercent = DEFAULT_KSMD_CPU_BUDGET_PERCENT;
        private Estimator estimator = Estimator.DIGESTS;
        private CpuClock ksmdCpu;
        private LongSupplier nanoClock = System::nanoTime;
        private boolean concluded;

        public KernelKsm ksm() {
            return ksm;
        }

        /** The KSM to drive; default {@link KernelKsm#system()}. */
        public Context ksm(KernelKsm ksm) {
            checkNotConcluded();
            this.ksm = ksm;
            return this;
        }

        public KsmTuner.Policy policy() {
            return policy;
        }

        /** The tuner's thresholds, page budget and rate; default {@link KsmTuner.Policy#defaults()}. */
        public Context policy(KsmTuner.Policy policy) {
            checkNotConcluded();
            this.policy = policy;
            return this;
        }

        public boolean dryRun() {
            return dryRun;
        }

        /** Decide and report, write nothing; default false. */
        public Context dryRun(boolean dryRun) {
            checkNotConcluded();
            this.dryRun = dryRun;
            return this;
        }

        public long maxPageSharing() {
            return maxPageSharing;
        }

        /** The {@code max_page_sharing} to set when KSM allows, 2 to 2147483647; 0 (the default) keeps it. */
        public Context maxPageSharing(long maxPageSharing) {
            checkNotConcluded();
            this.maxPageSharing = maxPageSharing;
            return this;
        }

        public double ksmdCpuBudgetPercent() {
            return ksmdCpuBudgetPercent;
        }

        /** The most CPU ksmd may use before the loop slows it, in percent of one CPU, above 0 to 100. */
        public Context ksmdCpuBudgetPercent(double ksmdCpuBudgetPercent) {
            checkNotConcluded();
            this.ksmdCpuBudgetPercent = ksmdCpuBudgetPercent;
            return this;
        }

        public Estimator estimator() {
            return estimator;
        }

        /** Where estimates come from; default {@link Estimator#DIGESTS}, which needs this machine's /proc. */
        public Context estimator(Estimator estimator) {
            checkNotConcluded();
            this.estimator = estimator;
            return this;
        }

        /** After {@link #conclude()}, never null. */
        public CpuClock ksmdCpu() {
            return ksmdCpu;
        }

        /** ksmd's CPU time; null (the default) reads {@link Ksmd}, found once under the KSM's /proc. */
        public Context ksmdCpu(CpuClock ksmdCpu) {
            checkNotConcluded();
            this.ksmdCpu = ksmdCpu;
            return this;
        }

        public LongSupplier nanoClock() {
            return nanoClock;
        }

        /** The wall clock the CPU use is measured against; default {@link System#nanoTime()}. */
        public Context nanoClock(LongSupplier nanoClock) {
            checkNotConcluded();
            this.nanoClock = nanoClock;
            return this;
        }

        public boolean concluded() {
            return concluded;
        }

        /**
         * Validates every setting and fills in the defaults; once only.
         *
         * @throws IllegalArgumentException naming the setting that is wrong
         * @throws IllegalStateException if concluded already
         */
        public Context conclude() {
            checkNotConcluded();
            if (!(ksmdCpuBudgetPercent > 0 && ksmdCpuBudgetPercent <= 100)) {
                throw new IllegalArgumentException("ksmdCpuBudgetPercent must be above 0 and at most 100 (percent "
                        + "of one CPU), not " + ksmdCpuBudgetPercent);
            }
            if (maxPageSharing != 0 && (maxPageSharing < 2 || maxPageSharing > Integer.MAX_VALUE)) {
                throw new IllegalArgumentException("maxPageSharing must be 2 to " + Integer.MAX_VALUE
                        + ", or 0 to keep the kernel's, not " + maxPageSharing);
            }
            if (estimator == Estimator.DIGESTS && !ksm.procDirectory().equals(KernelKsm.PROC_DIRECTORY)) {
                throw new IllegalArgumentException("the default estimator reads this machine's processes, so it "
                        + "needs a KernelKsm over " + KernelKsm.PROC_DIRECTORY + ", not " + ksm.procDirectory());
            }
            if (ksmdCpu == null) {
                ksmdCpu = new KsmdClock(ksm.procDirectory());
            }
            concluded = true;
            return this;
        }

        private void checkNotConcluded() {
            if (concluded) {
                throw new IllegalStateException("the context is concluded; make a new one");
            }
        }
    }
}
