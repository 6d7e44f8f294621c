package io.samepage.density;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * The checks hold (b) against kernel KSM only where KSM did the same work: a (d) that merged nothing had
 * its "time to 99%" at its first sample and a rate of 0 pages, and both checks against it said met
 * (the merge rate as "= Infinity").
 */
class MustShowTest {

    private static final int N = 2;

    private static DensityResults results(long ksmSaved, double ksmCpuSeconds) {
        return results(PageMix.demo(N, 256), ksmSaved, ksmCpuSeconds);
    }

    static DensityResults results(PageMix content, long ksmSaved, double ksmCpuSeconds) {
        DensityResults results = new DensityResults(content, new int[] {N}, 1024, 60);
        results.add(ModeResult.untimed(Mode.NO_DEDUP, N, 2L << 20, 0, null));
        results.add(new ModeResult(Mode.POST_LOAD, N, 1L << 20, 4096, 200,
                new SharingTrace.Point(0.5, 0.01, 200), false, 0, null));
        results.add(new ModeResult(Mode.PRE_LOAD, N, 1L << 20, 4096, 200,
                new SharingTrace.Point(0.1, 0.01, 200), false, 0, null));
        results.add(ModeResult.untimed(Mode.CONTAINER, N, 1L << 20, 200, "model"));
        results.add(new ModeResult(Mode.KSM_FULL_RATE, N, 2L << 20, 0, ksmSaved,
                new SharingTrace.Point(2.0, ksmCpuSeconds, ksmSaved), false, 60, null));
        return results;
    }

    private static MustShow named(List<MustShow> checks, String start) {
        return checks.stream().filter(c -> c.name().startsWith(start)).findFirst().orElseThrow();
    }

    @Test
    void aKsmRunThatMergedNothingIsNotMeasuredNotMet() {
        List<MustShow> checks = MustShow.check(results(0, 0.0));
        MustShow rate = named(checks, "pages merged per CPU-second");
        assertNull(rate.met(), rate.measured());
        assertEquals("(d) saved 0 pages where (b) saved 200 from the same bytes: kernel KSM did not do the same work, "
                + "so neither its time nor its rate compares", rate.measured());
        assertNull(named(checks, "(b) reaches 99%").met());
    }

    @Test
    void guestsThatFitFromOneNAreNotMeasuredNotMet() {
        MustShow fit = named(MustShow.check(results(200, 0.02)), "at least 3x as many guests fit");
        assertNull(fit.met(), fit.measured());
        assertTrue(fit.measured().endsWith("from one N: a line through the origin counts the shared part once per "
                + "guest; measured with two N or more (--guests 8,16)"), fit.measured());
    }

    private static ModeResult run(Mode mode, long saved, double cpuSeconds) {
        return new ModeResult(mode, N, 1L << 20, 0, saved, new SharingTrace.Point(cpuSeconds, cpuSeconds, saved),
                false, 0, null);
    }

    @Test
    void withSeveralRunsTheRateAndTimesAreMediansWithTheirRange() {
        DensityResults results = results(200, 0.02);         // (b) 20,000 and (d) 10,000 pages per CPU-second
        results.addRerun(run(Mode.POST_LOAD, 200, 0.001), 2);   // 200,000: an outlier the median ignores
        results.addRerun(run(Mode.POST_LOAD, 200, 0.04), 3);    // 5,000
        results.addRerun(run(Mode.KSM_FULL_RATE, 200, 0.04), 2);
        results.addRerun(run(Mode.KSM_FULL_RATE, 200, 0.01), 3);
        MustShow rate = named(MustShow.check(results), "pages merged per CPU-second");
        assertEquals("(b) 20000 (5000 to 200000, 3 runs) / (d) 10000 (5000 to 20000, 3 runs) pages per CPU-second "
                + "= 2.00 (medians of 3 runs of (b) and 3 of (d))", rate.measured());
        assertEquals(false, rate.met());
        MustShow time = named(MustShow.check(results), "(b) reaches 99%");
        assertEquals("time (d) 0.04 s / (b) 0.04 s = 1.00x; CPU (b) 0.01 s vs (d) 0.02 s (medians of 3 runs of (b) "
                + "and 3 of (d))", time.measured());
    }

    @Test
    void oneRerunOfKsmThatMergedNothingMakesTheComparisonNotMeasured() {
        DensityResults results = results(200, 0.02);
        results.addRerun(run(Mode.POST_LOAD, 200, 0.01), 2);
        results.addRerun(run(Mode.KSM_FULL_RATE, 0, 0.0), 2);
        MustShow rate = named(MustShow.check(results), "pages merged per CPU-second");
        assertNull(rate.met(), rate.measured());
        assertTrue(rate.measured().startsWith("(d) saved 0 pages where (b) saved 200"), rate.measured());
    }

    /**
     * A rerun that stopped at the timeout was shown without the first run's "(at timeout)" and its note
     * was dropped, and a rerun that failed lost the whole report (a review's findings): now the every-run
     * line marks it, and the notes give each rerun's note and failure.
     */
    @Test
    void theReportMarksATimedOutRerunAndSaysWhichRunFailed(@org.junit.jupiter.api.io.TempDir java.nio.file.Path dir)
            throws Exception {
        DensityResults results;
        try (PageMix content = PageMix.density(TestImages.randomFile(dir, 300, 1), N, 1, 25, 9)) {
            results = results(content, 200, 0.02);
        }
        results.addRerun(new ModeResult(Mode.KSM_FULL_RATE, N, 2L << 20, 0, 200, new SharingTrace.Point(60, 0.01, 200),
                true, 60, "stopped at 60 s"), 2);
        results.rerunFailed(Mode.KSM_FULL_RATE, 3, "the KSM helper process did not get ready");
        String md = new DensityReport(results, "samepage bench density --test").markdown();
        assertTrue(md.contains("; 60.00 / 0.01 s, 20000 pages per CPU-second (at timeout)."), md);
        assertTrue(md.contains("- (d) kernel KSM, full rate, N=2, run 2: stopped at 60 s\n"), md);
        assertTrue(md.contains("- (d) kernel KSM, full rate, N=2, run 3 failed, so it is left out of the medians: the KSM "
                + "helper process did not get ready\n"), md);
        assertTrue(named(MustShow.check(results), "pages merged per CPU-second").measured()
                .endsWith("(medians of 1 runs of (b) and 2 of (d))"));
    }

    @Test
    void aKsmRunThatMergedTheSameIsCompared() {
        List<MustShow> checks = MustShow.check(results(200, 0.02));
        MustShow rate = named(checks, "pages merged per CPU-second");
        assertEquals("(b) 20000 / (d) 10000 pages per CPU-second = 2.00", rate.measured());
        assertEquals(false, rate.met());
        assertEquals(true, named(checks, "(b) reaches 99%").met());
    }
}
