package io.samepage.testing;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.samepage.testing.AllocationFaultRuns.Outcome;
import io.samepage.testing.AllocationFaultRuns.Scenario;
import io.samepage.testing.sample.Faulting;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * The driver the allocation fault tests share: it counts a scenario's allocations and sites, chooses
 * among them (every one, the first at each site, a seeded sample), collects each distinct finding of
 * the runs once, stops at a stuck thread, and refuses a scenario whose run that fails nothing finds
 * something.
 */
class AllocationFaultRunsTest {

    private static final AllocationFaultRuns RUNS = new AllocationFaultRuns("AllocationFaultRunsTest");

    @AfterEach
    void reset() {
        AllocationFaults.reset();
    }

    private static Scenario load(String shape) throws ReflectiveOperationException {
        AllocationFaultLoader loader = new AllocationFaultLoader(AllocationFaultRunsTest.class.getClassLoader(),
                List.of("io.samepage.testing.sample."), name -> name.equals(Faulting.class.getName()));
        return AllocationFaultRuns.load(loader, Faulting.class, "Faulting " + shape, shape);
    }

    @Test
    void aScenarioIsCountedAndItsAllocationsChosen() throws Exception {
        Scenario whole = load("whole");
        assertEquals(3, whole.allocations());
        assertEquals(whole.sites().get(0), whole.sites().get(1), "a loop allocates at one site twice: " + whole.sites());
        assertEquals(List.of(1L, 2L, 3L), AllocationFaultRuns.every(whole));
        assertEquals(List.of(1L, 3L), AllocationFaultRuns.firstAtEachSite(whole));
        assertEquals(List.of(2L, 3L), AllocationFaultRuns.lastAtEachSite(whole), "the loop's site passed last at 2");
        assertEquals(List.of(1L, 2L, 3L), AllocationFaultRuns.eachSiteAndASample(whole, 0, 42));
        List<Long> sample = AllocationFaultRuns.sample(whole, 10, 42);
        assertEquals(sample, AllocationFaultRuns.sample(whole, 10, 42), "one seed draws the same ones");
        assertTrue(List.of(1L, 2L, 3L).containsAll(sample) && !sample.isEmpty(), sample.toString());
        assertEquals(new Outcome(List.of(), List.of()), RUNS.failEach(whole, AllocationFaultRuns.every(whole)));
    }

    @Test
    void eachFindingIsKeptOnceAndARunThatMissesItsSiteIsNamed() throws Exception {
        Scenario flawed = load("flawed");
        Outcome outcome = RUNS.failEach(flawed, List.of(1L, 3L, 3L));
        assertEquals(List.of("the last allocation's failure was not handled"), outcome.findings());
        assertEquals(List.of(), outcome.notReached());
        Scenario past = new Scenario(flawed.name(), flawed.instance(), flawed.run(), 4,
                List.of(flawed.sites().get(0), flawed.sites().get(1), flawed.sites().get(2), "nowhere"));
        assertEquals(List.of(4L), RUNS.failEach(past, List.of(4L)).notReached(), "the run passes three allocations, not four");
    }

    @Test
    void aStuckThreadEndsTheRunsWithItsFindingWhole() throws Exception {
        Scenario stuck = load("stuck");
        Outcome outcome = RUNS.failEach(stuck, AllocationFaultRuns.every(stuck));
        assertEquals(List.of("a worker does not return\nits pages stay loaded"), outcome.findings());
    }

    @Test
    void aScenarioWhoseRunThatFailsNothingFindsSomethingIsRefused() {
        AssertionError refused = assertThrows(AssertionError.class, () -> load("unclean"));
        assertEquals("Faulting unclean: the run that fails nothing, loading the classes: found left over", refused.getMessage());
    }
}
