package io.samepage.host;

import static io.samepage.host.PolicyEstimates.ONE_GUEST;
import static io.samepage.host.PolicyEstimates.RICH;
import static io.samepage.host.PolicyEstimates.THIN;

import io.samepage.testing.AllocationFaultLoader;
import io.samepage.testing.ArmedScenario;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * A {@link KsmPolicyLoop}'s life on a fake KSM directory, with the k-th allocation failing, for
 * {@link HostAllocationFaultTest}, which loads this class through an {@link AllocationFaultLoader}: the loop
 * is made on a context, steps once with an estimate that pays (it writes {@code max_page_sharing},
 * {@code advisor_target_scan_time}, {@code advisor_mode} and {@code run}), once with one that does not
 * (it writes {@code run=0}), and closes.
 *
 * <p>Whatever fails, no knob is left changed: a step that throws has remembered every knob it wrote, so a
 * close after it, unarmed (as its caller's would be, a caller that may try again), writes each back; a
 * close that throws keeps what it did not restore for the next one. After the run every file of the
 * directory reads as before it.
 *
 * <p>{@link #apply} returns the findings of one run, one line each ("" for none); {@link #getAsLong} the
 * allocations the last run passed. Not thread safe.
 */
final class KsmPolicyLoopAllocationScenario extends ArmedScenario {

    private static final KsmTuner.Policy RATE_120 = new KsmTuner.Policy(5, 64L << 20, 65536, null, 120L);

    private final FakeKsm fake;
    private final Map<String, String> boot;
    private MergeableEstimate.Potential potential;
    /** The run's loop, once made. */
    private KsmPolicyLoop loop;
    /** What the run's steps were doing: what failed, if they threw. */
    private String step;

    KsmPolicyLoopAllocationScenario(Path dir) throws Exception {
        fake = FakeKsm.create(dir);
        Files.writeString(fake.proc.resolve("meminfo"), "MemTotal: 16777216 kB\nMemFree: 12582912 kB\n");
        fake.put("advisor_target_scan_time", "300");
        boot = fake.snapshot();
        // Initialized here, unarmed: an enum's constructors are rewritten, and one that failed in its
        // initializer would leave the class unusable (NoClassDefFoundError) for every later run.
        KsmKnob.values();
        KernelKsmException.Kind.values();
    }

    @Override
    protected String run(long failAt) throws Exception {
        fake.writes.clear();
        potential = RICH;
        loop = null;
        step = "made";
        Throwable thrown = armed(() -> {
            loop = new KsmPolicyLoop(new KsmPolicyLoop.Context().ksm(fake.ksm()).maxPageSharing(512).policy(RATE_120)
                    .estimator((ksm, budget, mps, zero) -> new KsmPolicyLoop.Estimate(ONE_GUEST, potential))
                    .ksmdCpu(() -> 0).nanoClock(() -> 0).conclude());
            step = "its first step";
            loop.step();
            potential = THIN;
            step = "its second step";
            loop.step();
            step = "its close";
            loop.close();
        });
        List<String> findings = new ArrayList<>();
        expectInjected(thrown, where(), findings);
        String state = thrown == null ? "closed" : step + " failed";
        if (thrown != null && loop != null) {
            try {
                loop.close();
            } catch (RuntimeException e) {
                findings.add(where() + ": " + state + ", and the close after it threw " + e);
            }
        }
        Map<String, String> now = fake.snapshot();
        if (!now.equals(boot)) {
            List<String> changed = new ArrayList<>();
            now.forEach((name, text) -> {
                if (!text.equals(boot.get(name))) {
                    changed.add(name + ": " + boot.get(name).strip() + " -> " + text.strip());
                }
            });
            findings.add(where() + ": " + state + ", and knobs are left changed: " + changed);
            for (Map.Entry<String, String> file : boot.entrySet()) {      // for the next run
                Files.writeString(fake.directory.resolve(file.getKey()), file.getValue());
            }
        }
        return String.join("\n", findings);
    }
}
