package io.samepage.daemon;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.samepage.testing.AllocationFaultLoader;
import io.samepage.testing.AllocationFaults;
import java.lang.reflect.Constructor;
import java.nio.file.Files;
import java.nio.file.Path;
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
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * Whatever allocation of the daemon fails, the reload, counters file publish, launch or close it fails
 * in leaves nothing half done: a reload's settings all old or all new, a counters file whole, a launch
 * with nothing left open, a close with everything closed; and the next one goes well. The classes of
 * {@code io.samepage.daemon} are loaded child first by an {@link AllocationFaultLoader}, which rewrites
 * the main ones to ask {@link AllocationFaults} before each allocation (and before each call of
 * {@code Throwable.addSuppressed}, which allocates, as a failed launch's clean-up does); the engine, host
 * mode and Agrona come from the parent, unchanged. Each scenario runs once to count the allocations it
 * passes, then once for each allocation chosen, failing it with an {@link OutOfMemoryError}: every one for
 * the reload and the counters file; for the launch and the close, whose runs each wait for a daemon's
 * threads to end, the first at each site and a seeded sample of the rest. The seed is printed; {@code -Dallocfault.seed} repeats a sample. The
 * scenarios say what they check: {@link ReloadAllocationScenario}, {@link CountersFileAllocationScenario},
 * {@link LaunchAllocationScenario}.
 */
class DaemonAllocationFaultTest {

    /** Runs of a launch or a close, past its sites' first allocations. */
    private static final int SAMPLE = 20;

    @TempDir
    Path dir;

    @AfterEach
    void disarm() {
        AllocationFaults.reset();
    }

    @Test
    @Timeout(value = 60, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
    void aReloadThatRunsOutOfHeapAppliesAllOrNothingAndTheNextReloadGoesWell() throws Exception {
        Scenario reload = load(ReloadAllocationScenario.class, null);
        try {
            assertNoFindings(reload, every(reload));
        } finally {
            ((AutoCloseable) reload.instance()).close();
        }
    }

    @Test
    @Timeout(value = 60, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
    void aCountersFilePublishThatRunsOutOfHeapLeavesAWholeSnapshotAndTheNextPublishGoesWell() throws Exception {
        Scenario counters = load(CountersFileAllocationScenario.class, null);
        assertNoFindings(counters, every(counters));
    }

    @Test
    @Timeout(value = 60, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
    void aLaunchThatRunsOutOfHeapLeavesNoThreadPortMappingOrHalfMadeCountersFile() throws Exception {
        Scenario launch = load(LaunchAllocationScenario.class, "launch");
        assertNoFindings(launch, firstAtEachSiteAndASample(launch));
    }

    @Test
    @Timeout(value = 60, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
    void aCloseThatRunsOutOfHeapStillEndsEveryThreadAndFreesThePort() throws Exception {
        Scenario close = load(LaunchAllocationScenario.class, "close");
        assertNoFindings(close, firstAtEachSiteAndASample(close));
    }

    /**
     * The first allocation the counting run passed at each site, and {@value #SAMPLE} more drawn with
     * {@code -Dallocfault.seed}, else a new seed, which is printed so that a run can be repeated.
     */
    private static List<Long> firstAtEachSiteAndASample(Scenario scenario) {
        long seed = Long.getLong("allocfault.seed", System.nanoTime());
        System.out.println("DaemonAllocationFaultTest: " + scenario.name() + ", -Dallocfault.seed=" + seed);
        Set<Long> chosen = new TreeSet<>();
        Set<String> seen = new LinkedHashSet<>();
        for (int i = 0; i < scenario.sites().size(); i++) {
            if (seen.add(scenario.sites().get(i))) {
                chosen.add(i + 1L);
            }
        }
        SplittableRandom random = new SplittableRandom(seed);
        for (int i = 0; i < SAMPLE; i++) {
            chosen.add(random.nextLong(1, scenario.allocations() + 1));
        }
        return new ArrayList<>(chosen);
    }

    private static List<Long> every(Scenario scenario) {
        List<Long> every = new ArrayList<>();
        for (long k = 1; k <= scenario.allocations(); k++) {
            every.add(k);
        }
        return every;
    }

    /** A scenario loaded through a loader of its own, counted by a run that fails nothing after one that loads its classes. */
    private record Scenario(String name, Object instance, LongFunction<String> run, long allocations, List<String> sites) {
    }

    /**
     * Loads {@code type}, made with {@code shape} (or without, if null) and a directory of its own, through
     * a loader of its own that rewrites {@code io.samepage.daemon}'s main classes; then counts it.
     */
    private Scenario load(Class<?> type, String shape) throws Exception {
        ClassLoader parent = DaemonAllocationFaultTest.class.getClassLoader();
        AllocationFaultLoader loader = new AllocationFaultLoader(parent, List.of("io.samepage.daemon."),
                AllocationFaultLoader.fromCodeSourcesOf(parent, Daemon.class), Set.of("java/lang/Throwable.addSuppressed"));
        Class<?> loaded = loader.loadClass(type.getName());
        Path own = Files.createDirectory(dir.resolve(type.getSimpleName() + (shape == null ? "" : "-" + shape)));
        Constructor<?> constructor = shape == null ? loaded.getDeclaredConstructor(Path.class)
                : loaded.getDeclaredConstructor(String.class, Path.class);
        constructor.setAccessible(true);
        Object scenario = shape == null ? constructor.newInstance(own) : constructor.newInstance(shape, own);
        String name = type.getSimpleName() + (shape == null ? "" : " " + shape);
        @SuppressWarnings("unchecked")
        LongFunction<String> run = (LongFunction<String>) scenario;
        assertEquals("", run.apply(0), name + ": the run that fails nothing, loading the classes");
        AllocationFaults.record();
        assertEquals("", run.apply(0), name + ": the run that fails nothing");
        List<String> recorded = AllocationFaults.recordedSites();
        long count = ((LongSupplier) scenario).getAsLong();
        assertTrue(count > 0 && count <= recorded.size(), name + ": its steps pass allocation sites of the rewritten classes");
        return new Scenario(name, scenario, run, count, recorded.subList(0, (int) count));
    }

    /**
     * Fails each chosen allocation in a run of its own; no run may find anything, and each must fail at
     * the site the counting run passed as its k-th (the daemon's own threads are idle meanwhile).
     */
    private static void assertNoFindings(Scenario scenario, List<Long> chosen) {
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
        System.out.println("DaemonAllocationFaultTest: " + scenario.name() + ": " + chosen.size() + " of "
                + scenario.allocations() + " allocations at " + new TreeSet<>(scenario.sites()).size()
                + " sites failed one at a time; " + findings.size() + " findings");
        findings.keySet().forEach(f -> System.out.println("  " + f));
        assertEquals(List.of(), List.copyOf(findings.keySet()), scenario.name() + ": findings");
        assertEquals(List.of(), notReached, scenario.name() + ": runs that did not fail at the site the counting run passed there");
    }
}
