package io.samepage.host;

import static io.samepage.host.PolicyEstimates.RICH;
import static io.samepage.host.PolicyEstimates.THIN;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Path;
import java.util.Map;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The policy loop's decision, {@link KsmPolicy#decide}, on fixed inputs. */
class KsmPolicyTest {

    private static final HostMemory ROOMY = new HostMemory(16L << 30, 12L << 30);
    /** 5 CPU-seconds in 10 s: 50% of one CPU. */
    private static final KsmPolicy.CpuUse HALF_A_CPU = new KsmPolicy.CpuUse(5, 10);
    private static final KsmTuner.Policy KSMTUNED = new KsmTuner.Policy(5, 64L << 20, 65536, KsmTuner.Rate.KSMTUNED,
            null);

    @TempDir
    Path root;

    private FakeKsm fake;

    @BeforeEach
    void createFake() throws IOException {
        fake = FakeKsm.create(root);
    }

    private KsmPolicy.Decision decide(MergeableEstimate.Potential potential, KsmTuner.Policy policy,
                                      long maxPageSharing, KsmPolicy.CpuUse cpu, double budgetPercent) {
        KsmStatus status = fake.ksm().status();
        KsmTuner.Plan tuned = KsmTuner.decide(status, ROOMY, 2, potential, policy);
        return KsmPolicy.decide(status, tuned, maxPageSharing, cpu, "not measured", budgetPercent);
    }

    @Test
    void maxPageSharingIsSetOnlyWhileNoPageIsShared() throws IOException {
        KsmPolicy.Decision free = decide(RICH, KsmTuner.Policy.defaults(), 512, null, 20);
        assertEquals(Map.of("max_page_sharing", "512", "advisor_mode", "scan-time", "run", "1"),
                free.plan().writes());
        fake.put("run", "1");
        fake.put("pages_shared", "40");
        KsmPolicy.Decision busy = decide(RICH, KsmTuner.Policy.defaults(), 512, null, 20);
        assertEquals(Map.of("advisor_mode", "scan-time"), busy.plan().writes());
        KsmTuner.Step kept = busy.plan().steps().stream().filter(s -> s.knob() == KsmKnob.MAX_PAGE_SHARING)
                .findFirst().orElseThrow();
        assertTrue(kept.reason().startsWith("configured 512, but 40 pages are shared"), kept.reason());
        assertEquals(Map.of("run", "2"), decide(THIN, KsmTuner.Policy.defaults(), 512, null, 20).plan().writes(),
                "stopping never sets it");
    }

    @Test
    void overTheBudgetTheAdvisorsCpuCapComesDownToTheBudgetThenHalves() throws IOException {
        fake.put("run", "1");
        fake.put("advisor_mode", "none [scan-time]");
        KsmPolicy.Decision first = decide(RICH, KsmTuner.Policy.defaults(), 0, HALF_A_CPU, 20);
        assertTrue(first.backsOff());
        assertEquals(Map.of("advisor_max_cpu", "20"), first.plan().writes());
        assertTrue(first.cpu().startsWith("ksmd used 5.000 CPU-seconds in 10.0 s, 50.0% of one CPU, above the "
                + "budget of 20.0%; back-off: advisor_max_cpu 70 -> 20"), first.cpu());
        fake.put("advisor_max_cpu", "20");
        assertEquals(Map.of("advisor_max_cpu", "10"), decide(RICH, KsmTuner.Policy.defaults(), 0, HALF_A_CPU, 20)
                .plan().writes());
        fake.put("advisor_max_cpu", "1");
        KsmPolicy.Decision floor = decide(RICH, KsmTuner.Policy.defaults(), 0, HALF_A_CPU, 20);
        assertFalse(floor.backsOff());
        assertTrue(floor.cpu().endsWith("KSM runs at its slowest already"), floor.cpu());
    }

    @Test
    void overTheBudgetKsmtunedsPagesToScanHalvesThenTheSleepDoubles() throws IOException {
        fake.put("run", "1");
        fake.put("pages_to_scan", "1000");
        KsmPolicy.Decision halved = decide(RICH, KSMTUNED, 0, HALF_A_CPU, 20);
        assertTrue(halved.backsOff());
        assertEquals("475", halved.plan().writes().get("pages_to_scan"), "ksmtuned's 950, halved");
        fake.put("pages_to_scan", "64");
        fake.put("sleep_millisecs", "40");
        KsmPolicy.Decision slept = decide(RICH, KSMTUNED, 0, HALF_A_CPU, 20);
        assertEquals(Map.of("sleep_millisecs", "80"), slept.plan().writes());
    }

    @Test
    void withinTheBudgetOrWhenKsmStopsThereIsNoBackOff() throws IOException {
        fake.put("run", "1");
        fake.put("pages_to_scan", "1000");
        KsmPolicy.Decision within = decide(RICH, KSMTUNED, 0, new KsmPolicy.CpuUse(1, 10), 20);
        assertFalse(within.backsOff());
        assertEquals("950", within.plan().writes().get("pages_to_scan"));
        KsmPolicy.Decision stops = decide(THIN, KSMTUNED, 0, HALF_A_CPU, 20);
        assertFalse(stops.backsOff());
        assertEquals(Map.of("run", "0"), stops.plan().writes());
        assertFalse(decide(RICH, KSMTUNED, 0, null, 20).backsOff(), "unknown CPU use");
    }

    @Test
    void aRaisedSleepIsKeptWhileKsmdUsesMoreThanHalfTheBudget() throws IOException {
        fake.put("run", "1");
        fake.put("sleep_millisecs", "80");
        KsmPolicy.Decision near = decide(RICH, KSMTUNED, 0, new KsmPolicy.CpuUse(1.5, 10), 20);
        assertFalse(near.plan().writes().containsKey("sleep_millisecs"), near.plan().writes().toString());
        KsmPolicy.Decision idle = decide(RICH, KSMTUNED, 0, new KsmPolicy.CpuUse(0.5, 10), 20);
        assertEquals("10", idle.plan().writes().get("sleep_millisecs"));
    }
}
