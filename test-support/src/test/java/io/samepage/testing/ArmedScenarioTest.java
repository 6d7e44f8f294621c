package io.samepage.testing;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * The run the daemon's, host mode's and the image index's allocation fault scenarios share: it counts the
 * allocations of the armed steps only, names the site that failed in its findings once the steps are over,
 * tells the injected {@link OutOfMemoryError} from any other throw, and reports a throw of the checks as
 * the run's one finding.
 */
class ArmedScenarioTest {

    @AfterEach
    void reset() {
        AllocationFaults.reset();
    }

    /**
     * Passes one allocation site before its steps, two in them ({@code A.a:1}, {@code B.b:2}), then throws
     * {@code stepsThrow} if not null; returns its findings, and with {@code checksThrow} throws after them.
     */
    private static final class Sample extends ArmedScenario {
        private final RuntimeException stepsThrow;
        private final boolean checksThrow;
        /** What {@link #where} said before the steps. */
        String whereBefore;

        Sample(RuntimeException stepsThrow, boolean checksThrow) {
            this.stepsThrow = stepsThrow;
            this.checksThrow = checksThrow;
        }

        @Override
        protected String run(long failAt) {
            AllocationFaults.beforeAllocation("Before.steps:0");
            whereBefore = where();
            Throwable thrown = armed(() -> {
                AllocationFaults.beforeAllocation("A.a:1");
                AllocationFaults.beforeAllocation("B.b:2");
                if (stepsThrow != null) {
                    throw stepsThrow;
                }
            });
            if (checksThrow) {
                throw new IllegalStateException("a check broke");
            }
            List<String> findings = new ArrayList<>();
            expectInjected(thrown, where(), findings);
            findings.add(where() + (thrown == null ? ": returned" : ": failed"));
            return String.join("\n", findings);
        }
    }

    @Test
    void aRunCountsTheAllocationsOfItsStepsAndNamesTheSiteThatFailed() {
        Sample sample = new Sample(null, false);
        assertEquals("k=0: returned", sample.apply(0));
        assertEquals(2, sample.getAsLong(), "the steps' two allocations, not the one before them");
        assertEquals("k=2 at B.b:2: failed", sample.apply(2), "the injected OutOfMemoryError is no finding");
        assertEquals("k=2", sample.whereBefore, "no site before the steps are over");
        assertEquals("k=3 at null: returned", sample.apply(3), "a failure the steps never reached");
    }

    @Test
    void aThrowOtherThanTheInjectedErrorIsAFinding() {
        Sample sample = new Sample(new IllegalArgumentException("not an allocation"), false);
        assertEquals("k=1 at A.a:1: failed", sample.apply(1), "the injected error came first");
        assertEquals("k=0: threw java.lang.IllegalArgumentException: not an allocation instead of the"
                + " OutOfMemoryError\nk=0: failed", sample.apply(0));
    }

    @Test
    void aThrowOfTheChecksIsTheRunsOneFinding() {
        Sample sample = new Sample(null, true);
        assertEquals("k=1 at A.a:1: the checks threw java.lang.IllegalStateException: a check broke", sample.apply(1));
        assertNull(ArmedScenario.thrownOtherwise(null, "k=0"), "steps that threw nothing");
    }

    @Test
    void aShapeIsOneOfThoseNamedOrRefusedNamingThem() {
        assertEquals(1, ArmedScenario.shape("close", "launch", "close"));
        assertEquals("no shape 'open': launch or close",
                assertThrows(IllegalArgumentException.class, () -> ArmedScenario.shape("open", "launch", "close")).getMessage());
        assertEquals("no shape 'x': direct, workers or full-heap", assertThrows(IllegalArgumentException.class,
                () -> ArmedScenario.shape("x", "direct", "workers", "full-heap")).getMessage());
    }
}
