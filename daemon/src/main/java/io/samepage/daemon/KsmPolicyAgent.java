package io.samepage.daemon;

import io.samepage.host.KernelKsmException;
import io.samepage.host.KnobChange;
import io.samepage.host.KsmPolicyLoop;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;
import org.agrona.concurrent.Agent;

/**
 * The daemon's driver of kernel KSM: an Agrona {@link Agent} that steps host-mode's {@link KsmPolicyLoop}
 * (ksmtuned's successor) every {@code estimate_interval_seconds}, the first step at once, and closes it
 * on {@link #onClose()}, which restores the knobs the loop changed. The loop is single-threaded, so it is
 * stepped and closed only on this agent's thread.
 *
 * <p>What it tells the notice handler: a step's {@link KsmPolicyLoop.Report#lines()} only when the
 * decision (merge or not, backed off or not) or the knobs written differ from the last step's, so a
 * steady state logs nothing; a {@link KernelKsmException} once, until a step succeeds again (the loop
 * goes on); and, on close, what could not be restored.
 *
 * <p>Thread safety: {@link #doWork()} and {@link #onClose()} on the agent's thread; {@link #last()},
 * {@link #backoffs()} and {@link #intervalSeconds(long)} from any thread.
 */
final class KsmPolicyAgent implements Agent {

    private final KsmPolicyLoop loop;
    private final Consumer<String> notices;
    private volatile long intervalNanos;
    private volatile KsmPolicyLoop.Report last;
    private volatile long backoffs;
    private long nextStepNanos = System.nanoTime();
    private String lastDecision;
    private String lastFailure;

    private KsmPolicyAgent(KsmPolicyLoop loop, long intervalSeconds, Consumer<String> notices) {
        this.loop = loop;
        this.notices = notices;
        intervalSeconds(intervalSeconds);
    }

    /**
     * The agent of a daemon's context, or null if its {@code ksm_policy} is off: the context's
     * {@link Daemon.Context#ksmPolicyLoop()} (the kernel's KSM directory by default) with the config's
     * thresholds, rate, {@code max_page_sharing}, CPU budget and dry run.
     *
     * @throws DaemonException {@link DaemonException.Kind#CONFIG} if the loop refuses its settings
     */
    static KsmPolicyAgent of(Daemon.Context context) {
        KsmPolicyConfig config = context.ksmPolicy();
        if (config.mode() == KsmPolicyConfig.Mode.OFF) {
            return null;
        }
        KsmPolicyLoop.Context loop = context.ksmPolicyLoop();
        try {
            loop.policy(config.policy()).dryRun(config.mode() == KsmPolicyConfig.Mode.DRY_RUN)
                    .maxPageSharing(config.maxPageSharing()).ksmdCpuBudgetPercent(config.ksmdCpuBudgetPercent())
                    .conclude();
        } catch (IllegalArgumentException | IllegalStateException e) {
            throw new DaemonException(DaemonException.Kind.CONFIG, "ksm_policy=" + config.mode().key() + ": "
                    + e.getMessage(), e);
        }
        return new KsmPolicyAgent(new KsmPolicyLoop(loop), context.estimateIntervalSeconds(), context.noticeHandler());
    }

    @Override
    public int doWork() {
        long now = System.nanoTime();
        if (now - nextStepNanos < 0) {
            return 0;
        }
        nextStepNanos = now + intervalNanos;
        KsmPolicyLoop.Report report;
        try {
            report = loop.step();
        } catch (KernelKsmException e) {
            String failure = e.getMessage();
            if (!failure.equals(lastFailure)) {
                notices.accept("ksm policy: " + failure + " (the loop goes on)");
                lastFailure = failure;
            }
            return 1;
        }
        lastFailure = null;
        if (report.backedOff()) {
            backoffs++;
        }
        last = report;
        String decision = "merge=" + report.tuning().plan().merge() + " backedOff=" + report.backedOff()
                + " changes=" + report.changes();
        if (!decision.equals(lastDecision)) {
            for (String line : report.lines()) {
                notices.accept("ksm policy: " + line);
            }
            lastDecision = decision;
        }
        return 1;
    }

    /**
     * Closes the loop, restoring the knobs it changed; says what could not be restored. A close an
     * {@link Error} cut short (an {@link OutOfMemoryError}) is tried once more before the Error is thrown on
     * (to the runner, which tells the error handler): the loop keeps what it has not restored yet, the heap
     * may have room once the error has unwound, and this is the daemon's last chance to leave kernel KSM as
     * it found it.
     */
    @Override
    public void onClose() {
        try {
            closeLoop();
        } catch (Error first) {
            try {
                closeLoop();
            } catch (RuntimeException | Error second) {
                if (second != first) {      // the JVM may throw one preallocated OutOfMemoryError twice
                    first.addSuppressed(second);
                }
            }
            throw first;
        }
    }

    private void closeLoop() {
        try {
            loop.close();
        } catch (KernelKsmException e) {
            List<KnobChange> written = e.written();
            notices.accept("ksm policy: " + e.getMessage() + (written.isEmpty() ? "" : "; restored " + written));
        }
    }

    @Override
    public String roleName() {
        return "samepage-ksm-policy";
    }

    /** The last step's report, or null before the first step succeeds. */
    KsmPolicyLoop.Report last() {
        return last;
    }

    /** How many steps slowed KSM down for the CPU budget. */
    long backoffs() {
        return backoffs;
    }

    /** Seconds between steps, from the next step on. */
    void intervalSeconds(long seconds) {
        intervalNanos = TimeUnit.SECONDS.toNanos(seconds);
    }

    /** Milliseconds the agent's runner sleeps between idle polls. */
    static long idleMillis() {
        return 50;
    }
}
