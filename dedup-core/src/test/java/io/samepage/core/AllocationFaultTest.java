package io.samepage.core;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.samepage.testing.AllocationFaultLoader;
import io.samepage.testing.AllocationFaults;
import java.lang.reflect.Constructor;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.SplittableRandom;
import java.util.TreeSet;
import java.util.function.LongFunction;
import java.util.function.LongSupplier;
import org.agrona.collections.Int2IntHashMap;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Whatever allocation of the engine fails, the operation it fails in changes nothing or completes, and
 * the engine stays whole. The engine's classes, and Agrona's collections, which its indexes and registry
 * grow, are rewritten by an {@link AllocationFaultLoader} to ask {@link AllocationFaults} before each
 * allocation, so this reaches every allocation site a scenario passes, not only the ones a test placed a
 * hook at. Each scenario runs once to count the allocations it passes, then once for each allocation
 * chosen, failing it with an {@link OutOfMemoryError}: every one where they are few; for the crowded
 * shape, whose allocations are mostly its indexes growing again and again, the first at each site and a
 * seeded sample of the rest; for the life on two scanner threads, a seeded sample. The seed is printed;
 * {@code -Dallocfault.seed} repeats a sample. {@link AllocationFaultScenario} says what its shapes check;
 * {@link DestroyedDuringABatchScenario}, {@link DestroyBetweenBatchesScenario} and {@link
 * DeferredMergesGrowthScenario} check one thing each.
 */
class AllocationFaultTest {

    /** Runs of the crowded shape, past its sites' first allocations: its growth repeats at each site. */
    private static final int CROWDED_SAMPLE = 80;
    /** Runs of the life on two scanner threads. */
    private static final int THREADS_SAMPLE = 100;

    @AfterEach
    void disarm() {
        AllocationFaults.reset();
    }

    @Test
    @Timeout(value = 60, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
    void noFailedAllocationOfAnEnginesLifeLeavesItHalfChanged() throws Exception {
        Scenario life = load(AllocationFaultScenario.class, "life");
        assertNoFindings(life, every(life), true);
    }

    private static List<Long> every(Scenario scenario) {
        List<Long> every = new ArrayList<>();
        for (long k = 1; k <= scenario.allocations(); k++) {
            every.add(k);
        }
        return every;
    }

    /**
     * The life with {@code scan_threads} 2: a seeded sample, since which allocation is the k-th depends on
     * the scanner's threads, so a run need not fail where the counting run passed its k-th allocation.
     */
    @Test
    @Timeout(value = 60, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
    void noFailedAllocationOfALifeOnTwoScannerThreadsLeavesTheEngineHalfChanged() throws Exception {
        Scenario threads = load(AllocationFaultScenario.class, "threads");
        long seed = seed("threads");
        SplittableRandom random = new SplittableRandom(seed);
        Set<Long> chosen = new TreeSet<>();
        for (int i = 0; i < THREADS_SAMPLE; i++) {
            chosen.add(random.nextLong(1, threads.allocations() + 1));
        }
        assertNoFindings(threads, new ArrayList<>(chosen), false);
    }

    @Test
    @Timeout(value = 60, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
    void aCloseThatRunsOutOfHeapStillTakesEveryGuestDown() throws Exception {
        Scenario closing = load(AllocationFaultScenario.class, "closing");
        assertNoFindings(closing, every(closing), true);
    }

    @Test
    @Timeout(value = 60, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
    void guestsDestroyedDuringABatchGiveTheirPageIdsBackOnce() throws Exception {
        Scenario held = load(DestroyedDuringABatchScenario.class, null);
        assertNoFindings(held, every(held), true);
    }

    @Test
    @Timeout(value = 60, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
    void aDestroyThatTookItsGuestDownDoesNotReportAFailure() throws Exception {
        Scenario destroys = load(DestroyBetweenBatchesScenario.class, null);
        assertNoFindings(destroys, every(destroys), true);
    }

    @Test
    @Timeout(value = 60, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
    void aScannerThreadsDeferredMergesThatCouldNotGrowStillTakePages() throws Exception {
        Scenario lists = load(DeferredMergesGrowthScenario.class, null);
        assertNoFindings(lists, every(lists), true);
    }

    @Test
    @Timeout(value = 60, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
    void noFailedAllocationOfGrowingIndexesLeavesTheEngineHalfChanged() throws Exception {
        Scenario crowded = load(AllocationFaultScenario.class, "crowded");
        long seed = seed("crowded");
        Set<Long> chosen = new LinkedHashSet<>();
        Set<String> seen = new LinkedHashSet<>();
        for (int i = 0; i < crowded.sites().size(); i++) {
            if (seen.add(crowded.sites().get(i))) {
                chosen.add(i + 1L);
            }
        }
        SplittableRandom random = new SplittableRandom(seed);
        for (int i = 0; i < CROWDED_SAMPLE; i++) {
            chosen.add(random.nextLong(1, crowded.allocations() + 1));
        }
        assertNoFindings(crowded, new ArrayList<>(new TreeSet<>(chosen)), true);
    }

    /** {@code -Dallocfault.seed}, else a new seed; printed, so that a run can be repeated. */
    private static long seed(String shape) {
        long seed = Long.getLong("allocfault.seed", System.nanoTime());
        System.out.println("AllocationFaultTest: " + shape + " shape, -Dallocfault.seed=" + seed);
        return seed;
    }

    /** A scenario loaded through a loader of its own, counted by a run that fails nothing after one that loads its classes. */
    private record Scenario(String shape, LongFunction<String> run, long allocations, List<String> sites) {
    }

    /** Loads {@code type}, made with {@code shape} (or with nothing, if null), through a loader of its own, and counts it. */
    private static Scenario load(Class<?> type, String shape) throws ReflectiveOperationException {
        ClassLoader parent = AllocationFaultTest.class.getClassLoader();
        AllocationFaultLoader loader = new AllocationFaultLoader(parent, List.of("io.samepage.core.", "org.agrona.collections."),
                AllocationFaultLoader.fromCodeSourcesOf(parent, DedupEngine.class, Int2IntHashMap.class));
        Class<?> loaded = loader.loadClass(type.getName());
        Constructor<?> constructor = shape == null ? loaded.getDeclaredConstructor() : loaded.getDeclaredConstructor(String.class);
        constructor.setAccessible(true);
        Object scenario = shape == null ? constructor.newInstance() : constructor.newInstance(shape);
        String name = shape == null ? type.getSimpleName() : shape;
        @SuppressWarnings("unchecked")
        LongFunction<String> run = (LongFunction<String>) scenario;
        assertEquals("", run.apply(0), name + ": the run that fails nothing, loading the classes");
        AllocationFaults.record();
        assertEquals("", run.apply(0), name + ": the run that fails nothing");
        List<String> recorded = AllocationFaults.recordedSites();
        long count = ((LongSupplier) scenario).getAsLong();
        assertTrue(count > 0 && count <= recorded.size(), name + ": its steps pass allocation sites of the rewritten engine");
        return new Scenario(name, run, count, recorded.subList(0, (int) count));
    }

    /**
     * Fails each chosen allocation in a run of its own; no run may find anything, and where
     * {@code deterministic}, each must fail at the site the counting run passed as its k-th.
     */
    private static void assertNoFindings(Scenario scenario, List<Long> chosen, boolean deterministic) {
        Map<String, Integer> findings = new LinkedHashMap<>();
        List<Long> notReached = new ArrayList<>();
        for (long k : chosen) {
            String found = scenario.run().apply(k);
            if (!scenario.sites().get((int) k - 1).equals(AllocationFaults.injectedAt())) {
                notReached.add(k);
            }
            for (String line : found.lines().toList()) {
                findings.merge(line, 1, Integer::sum);
            }
        }
        System.out.println("AllocationFaultTest: " + scenario.shape() + ": " + chosen.size() + " of " + scenario.allocations()
                + " allocations at " + new TreeSet<>(scenario.sites()).size() + " sites failed one at a time; "
                + findings.size() + " findings");
        findings.keySet().forEach(f -> System.out.println("  " + f));
        if (deterministic) {
            assertEquals(List.of(), notReached, scenario.shape() + ": runs that did not fail at the site the counting run passed there");
        }
        assertEquals(List.of(), List.copyOf(findings.keySet()), scenario.shape() + ": findings");
    }
}
