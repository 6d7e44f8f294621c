package io.samepage.density;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

import java.util.List;
import org.junit.jupiter.api.Test;

/** Guests that fit in a budget, and the 99% point of a sharing trace. */
class FitAndTraceTest {

    private static final long MIB = 1 << 20;

    private static ModeResult result(int n, long mib) {
        return ModeResult.untimed(Mode.PRE_LOAD, n, mib * MIB, 0, null);
    }

    @Test
    void fitIsALineThroughTheTwoLargestGuestCounts() {
        // 100 MiB shared, 20 MiB per guest: (4096 - 100) / 20 = 199.8 -> 199.
        Fit fit = Fit.of(List.of(result(1, 500), result(8, 260), result(16, 420)), 4096 * MIB);
        assertEquals(20 * MIB, fit.perGuestBytes(), 1e-6);
        assertEquals(100 * MIB, fit.baseBytes(), 1e-6);
        assertEquals(199, fit.guests());
    }

    @Test
    void oneGuestCountGivesALineThroughTheOriginAndABudgetBelowTheBaseFitsNone() {
        assertEquals(16, Fit.of(List.of(result(4, 256)), 1024 * MIB).guests());
        assertEquals(0, Fit.of(List.of(result(1, 300), result(2, 310)), 200 * MIB).guests());
        assertEquals(-1, Fit.of(List.of(ModeResult.skipped(Mode.PRE_LOAD, 2, "no")), MIB).guests());
    }

    @Test
    void theNinetyNinePercentPointIsTheFirstSampleAtOrAboveIt() {
        SharingTrace trace = new SharingTrace();
        for (int i = 0; i <= 100; i++) {
            trace.add(i * 1_000_000_000L, i * 500_000_000L, i * 10L);
        }
        assertEquals(1000, trace.finalSaved());
        SharingTrace.Point p = trace.pointOf99(trace.finalSaved());
        assertEquals(99, p.seconds(), 1e-9);
        assertEquals(49.5, p.cpuSeconds(), 1e-9);
        assertEquals(990, p.savedPages());
        assertEquals(20, p.pagesPerCpuSecond(), 1e-9);
        assertNull(trace.pointOf99(2000), "a target the run never came near is not reached");
    }
}
