package io.samepage.core;

import static org.junit.jupiter.api.Assertions.assertEquals;

import io.samepage.testing.AllocationFaultLoader;
import io.samepage.testing.AllocationFaultRuns;
import io.samepage.testing.AllocationFaultRuns.Outcome;
import io.samepage.testing.AllocationFaultRuns.Scenario;
import io.samepage.testing.AllocationFaults;
import java.util.List;
import org.agrona.collections.Int2IntHashMap;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Whatever allocation of the engine fails, the operation it fails in changes nothing or completes, and
 * the engine stays whole. The engine's classes, and Agrona's collections, which its indexes and registry
 * grow, are rewritten by an {@link AllocationFaultLoader} to ask {@link AllocationFaults} before each
 * allocation, so this reaches every allocation site a scenario passes, not only the ones a test placed a
 * hook at. {@link AllocationFaultRuns} runs each scenario once to count the allocations it passes, then
 * once for each allocation chosen, failing it with an {@link OutOfMemoryError}: every one where they are few; for the crowded
 * shape, whose allocations are mostly its indexes growing again and again, the first at each site and a
 * seeded sample of the rest; for the life on two scanner threads, a seeded sample. The seed is printed;
 * {@code -Dallocfault.seed} repeats a sample. {@link AllocationFaultScenario} says what its shapes check;
 * {@link DestroyedDuringABatchScenario}, {@link DestroyBetweenBatchesScenario} and {@link
 * DeferredMergesGrowthScenario} check one thing each; {@link FullHeapGuestScenario} creates and destroys
 * a guest on a heap that stays full, every allocation from the k-th on failing.
 */
class AllocationFaultTest {

    /** Runs of the crowded shape, past its sites' first allocations: its growth repeats at each site. */
    private static final int CROWDED_SAMPLE = 80;
    /** Runs of the life on two scanner threads. */
    private static final int THREADS_SAMPLE = 100;

    private static final AllocationFaultRuns RUNS = new AllocationFaultRuns("AllocationFaultTest");

    @AfterEach
    void disarm() {
        AllocationFaults.reset();
    }

    @Test
    @Timeout(value = 60, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
    void noFailedAllocationOfAnEnginesLifeLeavesItHalfChanged() throws Exception {
        Scenario life = load(AllocationFaultScenario.class, "life");
        assertNoFindings(life, AllocationFaultRuns.every(life), true);
    }

    /**
     * The life with {@code scan_threads} 2: a seeded sample, since which allocation is the k-th depends on
     * the scanner's threads, so a run need not fail where the counting run passed its k-th allocation.
     */
    @Test
    @Timeout(value = 60, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
    void noFailedAllocationOfALifeOnTwoScannerThreadsLeavesTheEngineHalfChanged() throws Exception {
        Scenario threads = load(AllocationFaultScenario.class, "threads");
        assertNoFindings(threads, AllocationFaultRuns.sample(threads, THREADS_SAMPLE, RUNS.seed("threads shape")), false);
    }

    @Test
    @Timeout(value = 60, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
    void aCloseThatRunsOutOfHeapStillTakesEveryGuestDown() throws Exception {
        Scenario closing = load(AllocationFaultScenario.class, "closing");
        assertNoFindings(closing, AllocationFaultRuns.every(closing), true);
    }

    @Test
    @Timeout(value = 60, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
    void guestsDestroyedDuringABatchGiveTheirPageIdsBackOnce() throws Exception {
        Scenario held = load(DestroyedDuringABatchScenario.class, null);
        assertNoFindings(held, AllocationFaultRuns.every(held), true);
    }

    @Test
    @Timeout(value = 60, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
    void aDestroyThatTookItsGuestDownDoesNotReportAFailure() throws Exception {
        Scenario destroys = load(DestroyBetweenBatchesScenario.class, null);
        assertNoFindings(destroys, AllocationFaultRuns.every(destroys), true);
    }

    /** A heap that stays full: the creation's undo runs out of heap too, and must still leave nothing of the guest. */
    @Test
    @Timeout(value = 60, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
    void aCreationOnAFullHeapMakesTheGuestWholeOrLeavesNothingOfIt() throws Exception {
        for (String shape : List.of("create", "create mapped", "create mapped refusing")) {
            Scenario create = load(FullHeapGuestScenario.class, shape);
            assertNoFindings(create, AllocationFaultRuns.every(create), true);
        }
    }

    @Test
    @Timeout(value = 60, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
    void aDestroyOnAFullHeapLeavesTheGuestAsItWasOrTakesItDownWhole() throws Exception {
        for (String shape : List.of("destroy", "destroy mapped")) {
            Scenario destroy = load(FullHeapGuestScenario.class, shape);
            assertNoFindings(destroy, AllocationFaultRuns.every(destroy), true);
        }
    }

    @Test
    @Timeout(value = 60, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
    void aScannerThreadsDeferredMergesThatCouldNotGrowStillTakePages() throws Exception {
        Scenario lists = load(DeferredMergesGrowthScenario.class, null);
        assertNoFindings(lists, AllocationFaultRuns.every(lists), true);
    }

    @Test
    @Timeout(value = 60, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
    void aFilingThatCouldNotGrowTheUnstableIndexLeavesItsPageOutAndUnmarked() throws Exception {
        Scenario filing = load(UnstableGrowthScenario.class, null);
        assertNoFindings(filing, AllocationFaultRuns.every(filing), true);
    }

    @Test
    @Timeout(value = 60, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
    void noFailedAllocationOfGrowingIndexesLeavesTheEngineHalfChanged() throws Exception {
        Scenario crowded = load(AllocationFaultScenario.class, "crowded");
        assertNoFindings(crowded,
                AllocationFaultRuns.eachSiteAndASample(crowded, CROWDED_SAMPLE, RUNS.seed("crowded shape")), true);
    }

    /**
     * Loads {@code type}, made with {@code shape} (or with nothing, if null), through a loader of its own
     * that rewrites the engine's classes and Agrona's collections, and counts it.
     */
    private static Scenario load(Class<?> type, String shape) throws ReflectiveOperationException {
        ClassLoader parent = AllocationFaultTest.class.getClassLoader();
        AllocationFaultLoader loader = new AllocationFaultLoader(parent, List.of("io.samepage.core.", "org.agrona.collections."),
                AllocationFaultLoader.fromCodeSourcesOf(parent, DedupEngine.class, Int2IntHashMap.class));
        return shape == null ? AllocationFaultRuns.load(loader, type, type.getSimpleName())
                : AllocationFaultRuns.load(loader, type, shape, shape);
    }

    /**
     * Fails each chosen allocation in a run of its own; no run may find anything, and where
     * {@code deterministic}, each must fail at the site the counting run passed as its k-th.
     */
    private static void assertNoFindings(Scenario scenario, List<Long> chosen, boolean deterministic) {
        Outcome outcome = RUNS.failEach(scenario, chosen);
        if (deterministic) {
            assertEquals(List.of(), outcome.notReached(), scenario.name() + ": runs that did not fail at the site the counting run passed there");
        }
        assertEquals(List.of(), outcome.findings(), scenario.name() + ": findings");
    }
}
