package io.samepage.host;

import static io.samepage.host.PolicyEstimates.RICH;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The tuning policy of {@link KsmTuner}, on fixed inputs. */
class KsmTunerTest {

    private static final long GIB = 1L << 30;
    /** 16 GiB, 12 GiB of it free: no memory pressure for ksmtuned. */
    private static final HostMemory ROOMY = new HostMemory(16 * GIB, 12 * GIB);

    @TempDir
    Path root;

    private FakeKsm fake;

    @BeforeEach
    void createFake() throws IOException {
        fake = FakeKsm.create(root);
    }

    private KsmTuner.Plan decide(HostMemory memory, int processes, MergeableEstimate.Potential potential,
                                 KsmTuner.Policy policy) {
        return KsmTuner.decide(fake.ksm().status(), memory, processes, potential, policy);
    }

    private static KsmTuner.Policy rate(KsmTuner.Rate rate) {
        return new KsmTuner.Policy(5, 64L << 20, 65536, rate, null);
    }

    @Test
    void withoutMergeableProcessesAStoppedKsmStaysStoppedAndARunningOneStops() throws IOException {
        KsmTuner.Plan plan = decide(ROOMY, 0, MergeableEstimate.Potential.none(), KsmTuner.Policy.defaults());
        assertFalse(plan.merge());
        assertTrue(plan.reason().startsWith("no process has mergeable memory"), plan.reason());
        assertEquals(Map.of(), plan.writes());
        fake.put("run", "1");
        assertEquals(Map.of("run", "0"), decide(ROOMY, 0, RICH, KsmTuner.Policy.defaults()).writes());
    }

    @Test
    void belowEitherThresholdKsmStopsAndUnmergesWhatIsMerged() throws IOException {
        MergeableEstimate.Potential thin =
                new MergeableEstimate.Potential(100_000, 50_000, 0, 1, 2_000, 0, 0, 0, 256, false);
        KsmTuner.Plan plan = decide(ROOMY, 2, thin, KsmTuner.Policy.defaults());
        assertFalse(plan.merge());
        assertEquals("KSM would save 4.0% of the pages read (below 5.0%), about 15.63 MiB "
                + "(below 64.00 MiB)", plan.reason());
        MergeableEstimate.Potential small =
                new MergeableEstimate.Potential(10_000, 10_000, 0, 1, 5_000, 0, 0, 0, 256, false);
        assertFalse(decide(ROOMY, 1, small, KsmTuner.Policy.defaults()).merge(), "50% but only 19.5 MiB");
        fake.put("run", "1");
        fake.put("pages_shared", "30");
        KsmTuner.Step step = decide(ROOMY, 2, thin, KsmTuner.Policy.defaults()).steps().getFirst();
        assertEquals(new KsmTuner.Step(KsmKnob.RUN, "1", "2", "merging does not pay: unmerge the 30 KSM pages "
                + "(pages_shared) so writes to them stop faulting, and stop ksmd"), step);
    }

    @Test
    void whenMergingPaysTheAdvisorSetsTheRateAndKsmRuns() {
        KsmTuner.Plan plan = decide(ROOMY, 2, RICH, new KsmTuner.Policy(5, 64L << 20, 65536, null, 120L));
        assertTrue(plan.merge());
        assertEquals("KSM would save 40.0% of the pages read (at least 5.0%), about 156.25 MiB "
                + "(at least 64.00 MiB)", plan.reason());
        assertEquals(Map.of("advisor_target_scan_time", "120", "advisor_mode", "scan-time", "run", "1"), plan.writes());
        assertTrue(plan.steps().get(1).reason().contains("advisor_target_scan_time (120 s)"), plan.steps().toString());
    }

    @Test
    void ksmtunedDecaysPagesToScanWithoutPressureAndSleepsTenMillisecondsOnSixteenGib() {
        KsmTuner.Plan plan = decide(ROOMY, 2, RICH, rate(KsmTuner.Rate.KSMTUNED));
        assertEquals(Map.of("pages_to_scan", "64", "sleep_millisecs", "10", "run", "1"), plan.writes());
        assertTrue(plan.steps().getFirst().reason().startsWith("ksmtuned: free memory 12288.0 MiB is not below "
                + "the threshold 3276.8 MiB"), plan.steps().getFirst().reason());
    }

    /**
     * Found by {@link KsmReadersFuzzTest}: ksmtuned's rate parsed {@code pages_to_scan} with
     * {@link Long#parseLong}, so a value that is not a number escaped as a NumberFormatException. It
     * counts as absent now, as {@link KsmStatus#number} has it: 0, then ksmtuned's step.
     */
    @Test
    void ksmtunedCountsAPagesToScanThatIsNotANumberAsAbsent() throws IOException {
        fake.put("pages_to_scan", "100 pages");
        KsmTuner.Plan plan = decide(ROOMY, 2, RICH, rate(KsmTuner.Rate.KSMTUNED));
        assertEquals("64", plan.writes().get("pages_to_scan"), "0 - 50, kept at least 64");
    }

    @Test
    void ksmtunedBoostsPagesToScanUnderPressureAndSleepsLongerOnSmallHosts() throws IOException {
        fake.put("pages_to_scan", "1100");
        HostMemory tight = new HostMemory(4 * GIB, GIB / 2);
        KsmTuner.Plan plan = decide(tight, 2, RICH, rate(KsmTuner.Rate.KSMTUNED));
        assertEquals("1250", plan.writes().get("pages_to_scan"), "1100 + 300, capped at 1250");
        assertEquals("40", plan.writes().get("sleep_millisecs"), "10 ms x 16 GiB / 4 GiB");
        fake.put("pages_to_scan", "500");
        assertEquals("800", decide(tight, 2, RICH, rate(KsmTuner.Rate.KSMTUNED)).writes().get("pages_to_scan"));
    }

    @Test
    void ksmtunedTurnsTheAdvisorOffFirstAndStartsFromTheKernelsReset() throws IOException {
        fake.put("advisor_mode", "none [scan-time]");
        fake.put("pages_to_scan", "64");
        KsmTuner.Plan plan = decide(ROOMY, 2, RICH, rate(KsmTuner.Rate.KSMTUNED));
        assertEquals(List.of("advisor_mode", "pages_to_scan", "sleep_millisecs", "run"), List.copyOf(plan.writes().keySet()));
        assertEquals(new KsmTuner.Step(KsmKnob.PAGES_TO_SCAN, "100", "64", plan.steps().get(1).reason()),
                plan.steps().get(1));
        fake.ksm().set(plan.writes());
        assertEquals(List.of("advisor_mode=none", "pages_to_scan=64", "sleep_millisecs=10", "run=1"), fake.writes);
    }

    @Test
    void withoutTheAdvisorTheDefaultRateIsKsmtunedAndAskingForItIsRefused() throws IOException {
        for (String file : List.of("advisor_mode", "advisor_max_cpu", "advisor_min_pages_to_scan",
                "advisor_max_pages_to_scan", "advisor_target_scan_time")) {
            Files.delete(fake.directory.resolve(file));
        }
        assertEquals(Map.of("pages_to_scan", "64", "sleep_millisecs", "10", "run", "1"),
                decide(ROOMY, 2, RICH, KsmTuner.Policy.defaults()).writes());
        KernelKsmException e = assertThrows(KernelKsmException.class,
                () -> decide(ROOMY, 2, RICH, rate(KsmTuner.Rate.ADVISOR)));
        assertEquals(KernelKsmException.Kind.INVALID, e.kind());
        assertTrue(e.getMessage().startsWith("this kernel has no scan-time advisor"), e.getMessage());
    }

    @Test
    void aPolicyOutOfRangeIsRefused() {
        assertThrows(IllegalArgumentException.class, () -> new KsmTuner.Policy(101, 0, 1, null, null));
        assertThrows(IllegalArgumentException.class, () -> new KsmTuner.Policy(5, -1, 1, null, null));
        assertThrows(IllegalArgumentException.class, () -> new KsmTuner.Policy(5, 0, 0, null, null));
        assertThrows(IllegalArgumentException.class, () -> new KsmTuner.Policy(5, 0, 1, null, 0L));
    }
}
