package io.samepage.host;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * One decision of the policy loop ({@link KsmPolicyLoop}), a pure function of what was seen: the
 * tuner's plan ({@link KsmTuner#decide}: whether KSM merges, and its rate), then {@code max_page_sharing}
 * where KSM allows a change, then the CPU back-off.
 *
 * <p><b>max_page_sharing.</b> Set to the configured value only while KSM is to merge, and only while no
 * page is shared ({@code pages_shared = 0}): the kernel refuses a change (EBUSY) otherwise, and the loop
 * does not unmerge every page to get it. It is then kept, saying why; the next start after an unmerge
 * sets it.
 *
 * <p><b>Back-off.</b> If ksmd used more than the budget (a percentage of one CPU) over the last interval
 * while KSM is to keep merging, KSM is slowed: with the scan-time advisor, {@code advisor_max_cpu} comes
 * down to the budget (halved if it is there already, at least 1); otherwise {@code pages_to_scan} is
 * halved, kept at least {@link KsmTuner#NPAGES_MIN}, and once it is there {@code sleep_millisecs} doubles,
 * up to {@link #MAX_SLEEP_MILLIS}. Halving against the tuner's additive steps (ksmtuned's +300) is
 * additive increase, multiplicative decrease: the rate settles under the budget instead of swinging.
 * ksmtuned's {@code sleep_millisecs} is an absolute value, which would undo a raise at once, so a raised
 * sleep is kept while ksmd uses more than half the budget.
 *
 * <p>The rejected alternative: a back-off level kept between steps. The kernel's knobs already hold it,
 * and a loop restarted by a daemon reload picks up from them.
 */
public final class KsmPolicy {

    /** The longest {@code sleep_millisecs} a back-off sets: one batch every 10 s. */
    public static final long MAX_SLEEP_MILLIS = 10_000;

    /**
     * ksmd's CPU time over one interval between two steps.
     *
     * @param cpuSeconds ksmd's CPU time in the interval (user + system)
     * @param wallSeconds the interval's length, greater than 0
     */
    public record CpuUse(double cpuSeconds, double wallSeconds) {
        /** ksmd's CPU use, in percent of one CPU. */
        public double percent() {
            return 100 * cpuSeconds / wallSeconds;
        }
    }

    /**
     * A decision: the plan (the tuner's, with {@code max_page_sharing} and the back-off applied), whether
     * it backs off, and one line on ksmd's CPU use against the budget.
     */
    public record Decision(KsmTuner.Plan plan, boolean backsOff, String cpu) {
    }

    private KsmPolicy() {
    }

    /**
     * Decides on what one step saw.
     *
     * @param tuned the tuner's plan for this status ({@link KsmTuner#decide})
     * @param maxPageSharing the wanted {@code max_page_sharing}; 0 keeps the kernel's
     * @param cpu ksmd's use since the last step; null if unknown (the first step, or no ksmd to read)
     * @param cpuUnknown why {@code cpu} is null; ignored otherwise
     * @param cpuBudgetPercent the most ksmd may use, in percent of one CPU
     */
    public static Decision decide(KsmStatus status, KsmTuner.Plan tuned, long maxPageSharing, CpuUse cpu,
                                  String cpuUnknown, double cpuBudgetPercent) {
        List<KsmTuner.Step> steps = new ArrayList<>(tuned.steps());
        if (tuned.merge() && maxPageSharing != 0) {
            maxPageSharing(status, maxPageSharing, steps);
        }
        if (cpu == null) {
            return new Decision(withSteps(tuned, steps), false, "ksmd's CPU use is unknown: " + cpuUnknown);
        }
        double percent = cpu.percent();
        String use = String.format(Locale.ROOT, "ksmd used %.3f CPU-seconds in %.1f s, %.1f%% of one CPU", cpu.cpuSeconds(),
                cpu.wallSeconds(), percent);
        if (percent <= cpuBudgetPercent) {
            String line = use + String.format(Locale.ROOT, ", within the budget of %.1f%%", cpuBudgetPercent);
            if (tuned.merge() && percent > cpuBudgetPercent / 2) {
                holdSleep(status, steps, use);
            }
            return new Decision(withSteps(tuned, steps), false, line);
        }
        String over = use + String.format(Locale.ROOT, ", above the budget of %.1f%%", cpuBudgetPercent);
        if (!tuned.merge()) {
            return new Decision(withSteps(tuned, steps), false, over + "; KSM stops, so no back-off");
        }
        String slowed = advisorRuns(status, steps) ? lowerAdvisorCpu(status, steps, cpuBudgetPercent, over)
                : slowRate(status, steps, over);
        if (slowed == null) {
            return new Decision(withSteps(tuned, steps), false, over + "; KSM runs at its slowest already");
        }
        return new Decision(withSteps(tuned, steps), true, over + "; back-off: " + slowed);
    }

    private static void maxPageSharing(KsmStatus status, long wanted, List<KsmTuner.Step> steps) {
        String now = status.value(KsmKnob.MAX_PAGE_SHARING).orElse(null);
        String value = Long.toString(wanted);
        if (now == null || now.equals(value)) {
            if (now != null) {
                steps.add(beforeRun(steps), new KsmTuner.Step(KsmKnob.MAX_PAGE_SHARING, now, now, "as configured"));
            }
            return;
        }
        long shared = status.pagesShared();
        KsmTuner.Step step = shared > 0
                ? new KsmTuner.Step(KsmKnob.MAX_PAGE_SHARING, now, now, "configured " + value + ", but " + shared
                        + " pages are shared (pages_shared) and the kernel refuses a change until they are "
                        + "unmerged (run=2), which would undo the merging; kept")
                : new KsmTuner.Step(KsmKnob.MAX_PAGE_SHARING, now, value, "as configured; no page is shared, "
                        + "so the kernel allows the change");
        steps.add(beforeRun(steps), step);
    }

    /** True if the plan leaves the scan-time advisor steering {@code pages_to_scan}. */
    private static boolean advisorRuns(KsmStatus status, List<KsmTuner.Step> steps) {
        int i = find(steps, KsmKnob.ADVISOR_MODE);
        return i >= 0 ? steps.get(i).newValue().equals(KsmKnob.ADVISOR_SCAN_TIME) : status.advisorScanTime();
    }

    private static String lowerAdvisorCpu(KsmStatus status, List<KsmTuner.Step> steps, double budget, String over) {
        long now = status.number(KsmKnob.ADVISOR_MAX_CPU.sysfsName()).orElse(0);
        long cap = Math.max(1, (long) budget);
        long next = now > cap ? cap : Math.max(1, now / 2);
        if (now <= 0 || next >= now) {
            return null;
        }
        String why = now > cap ? "down to the budget" : "halved, since ksmd went over the budget at the cap";
        put(steps, new KsmTuner.Step(KsmKnob.ADVISOR_MAX_CPU, Long.toString(now), Long.toString(next),
                over + ": " + why));
        return "advisor_max_cpu " + now + " -> " + next + " (" + why + ")";
    }

    private static String slowRate(KsmStatus status, List<KsmTuner.Step> steps, String over) {
        long pages = planned(status, steps, KsmKnob.PAGES_TO_SCAN);
        if (pages > KsmTuner.NPAGES_MIN) {
            long next = Math.max(KsmTuner.NPAGES_MIN, pages / 2);
            put(steps, new KsmTuner.Step(KsmKnob.PAGES_TO_SCAN, current(status, KsmKnob.PAGES_TO_SCAN),
                    Long.toString(next), over + ": the planned " + pages + " halved, kept at least "
                            + KsmTuner.NPAGES_MIN));
            return "pages_to_scan " + pages + " -> " + next + " (halved)";
        }
        long sleep = Math.max(status.number(KsmKnob.SLEEP_MILLISECS.sysfsName()).orElse(0),
                planned(status, steps, KsmKnob.SLEEP_MILLISECS));
        long next = Math.min(MAX_SLEEP_MILLIS, 2 * Math.max(sleep, KsmTuner.SLEEP_MSEC));
        if (next <= sleep) {
            return null;
        }
        put(steps, new KsmTuner.Step(KsmKnob.SLEEP_MILLISECS, current(status, KsmKnob.SLEEP_MILLISECS),
                Long.toString(next), over + ": pages_to_scan is at its least (" + KsmTuner.NPAGES_MIN
                        + "), so the sleep doubles, up to " + MAX_SLEEP_MILLIS + " ms"));
        return "sleep_millisecs " + sleep + " -> " + next + " (doubled)";
    }

    /** Keeps a {@code sleep_millisecs} the tuner would lower, while ksmd is near its budget. */
    private static void holdSleep(KsmStatus status, List<KsmTuner.Step> steps, String use) {
        int i = find(steps, KsmKnob.SLEEP_MILLISECS);
        long now = status.number(KsmKnob.SLEEP_MILLISECS.sysfsName()).orElse(-1);
        if (i < 0 || now < 0 || Long.parseLong(steps.get(i).newValue()) >= now) {
            return;
        }
        steps.set(i, new KsmTuner.Step(KsmKnob.SLEEP_MILLISECS, Long.toString(now), Long.toString(now), use
                + ", more than half the budget: kept, not lowered to ksmtuned's " + steps.get(i).newValue()));
    }

    /** The value the plan leaves {@code knob} at: its step's, else the kernel's; 0 if neither says. */
    private static long planned(KsmStatus status, List<KsmTuner.Step> steps, KsmKnob knob) {
        int i = find(steps, knob);
        return i >= 0 ? Long.parseLong(steps.get(i).newValue()) : status.number(knob.sysfsName()).orElse(0);
    }

    private static String current(KsmStatus status, KsmKnob knob) {
        return status.value(knob).orElse("0");
    }

    /** Replaces {@code knob}'s step (keeping the value it saw), or adds it before the step that starts ksmd. */
    private static void put(List<KsmTuner.Step> steps, KsmTuner.Step step) {
        int i = find(steps, step.knob());
        if (i >= 0) {
            steps.set(i, new KsmTuner.Step(step.knob(), steps.get(i).oldValue(), step.newValue(), step.reason()));
        } else {
            steps.add(beforeRun(steps), step);
        }
    }

    private static int beforeRun(List<KsmTuner.Step> steps) {
        int run = find(steps, KsmKnob.RUN);
        return run >= 0 ? run : steps.size();
    }

    private static int find(List<KsmTuner.Step> steps, KsmKnob knob) {
        for (int i = 0; i < steps.size(); i++) {
            if (steps.get(i).knob() == knob) {
                return i;
            }
        }
        return -1;
    }

    private static KsmTuner.Plan withSteps(KsmTuner.Plan tuned, List<KsmTuner.Step> steps) {
        return new KsmTuner.Plan(tuned.merge(), tuned.reason(), List.copyOf(steps));
    }
}
