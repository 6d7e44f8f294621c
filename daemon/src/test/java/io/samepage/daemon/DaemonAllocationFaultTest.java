package io.samepage.daemon;

import static org.junit.jupiter.api.Assertions.assertEquals;

import io.samepage.testing.AllocationFaultLoader;
import io.samepage.testing.AllocationFaultRuns;
import io.samepage.testing.AllocationFaultRuns.Outcome;
import io.samepage.testing.AllocationFaultRuns.Scenario;
import io.samepage.testing.AllocationFaults;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Set;
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
 * mode and Agrona come from the parent, unchanged. {@link AllocationFaultRuns} runs each scenario once to
 * count the allocations it passes, then once for each allocation chosen, failing it with an
 * {@link OutOfMemoryError}: every one for the reload and the counters file; for the launch and the close, whose runs each wait for a daemon's
 * threads to end, the first at each site and a seeded sample of the rest. The seed is printed; {@code -Dallocfault.seed} repeats a sample. The
 * scenarios say what they check: {@link ReloadAllocationScenario}, {@link CountersFileAllocationScenario},
 * {@link LaunchAllocationScenario}.
 */
class DaemonAllocationFaultTest {

    /** Runs of a launch or a close, past its sites' first allocations. */
    private static final int SAMPLE = 20;

    private static final AllocationFaultRuns RUNS = new AllocationFaultRuns("DaemonAllocationFaultTest");

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
            assertNoFindings(reload, AllocationFaultRuns.every(reload));
        } finally {
            ((AutoCloseable) reload.instance()).close();
        }
    }

    @Test
    @Timeout(value = 60, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
    void aCountersFilePublishThatRunsOutOfHeapLeavesAWholeSnapshotAndTheNextPublishGoesWell() throws Exception {
        Scenario counters = load(CountersFileAllocationScenario.class, null);
        assertNoFindings(counters, AllocationFaultRuns.every(counters));
    }

    @Test
    @Timeout(value = 60, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
    void aLaunchThatRunsOutOfHeapLeavesNoThreadPortMappingOrHalfMadeCountersFile() throws Exception {
        Scenario launch = load(LaunchAllocationScenario.class, "launch");
        assertNoFindings(launch, RUNS.eachSiteAndASample(launch, SAMPLE));
    }

    @Test
    @Timeout(value = 60, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
    void aCloseThatRunsOutOfHeapStillEndsEveryThreadAndFreesThePort() throws Exception {
        Scenario close = load(LaunchAllocationScenario.class, "close");
        assertNoFindings(close, RUNS.eachSiteAndASample(close, SAMPLE));
    }

    /**
     * Loads {@code type}, made with {@code shape} (or without, if null) and a directory of its own, through
     * a loader of its own that rewrites {@code io.samepage.daemon}'s main classes; then counts it.
     */
    private Scenario load(Class<?> type, String shape) throws Exception {
        ClassLoader parent = DaemonAllocationFaultTest.class.getClassLoader();
        AllocationFaultLoader loader = new AllocationFaultLoader(parent, List.of("io.samepage.daemon."),
                AllocationFaultLoader.fromCodeSourcesOf(parent, Daemon.class), Set.of("java/lang/Throwable.addSuppressed"));
        Path own = Files.createDirectory(dir.resolve(type.getSimpleName() + (shape == null ? "" : "-" + shape)));
        return shape == null ? AllocationFaultRuns.load(loader, type, type.getSimpleName(), own)
                : AllocationFaultRuns.load(loader, type, type.getSimpleName() + " " + shape, shape, own);
    }

    /**
     * Fails each chosen allocation in a run of its own; no run may find anything, and each must fail at
     * the site the counting run passed as its k-th (the daemon's own threads are idle meanwhile).
     */
    private static void assertNoFindings(Scenario scenario, List<Long> chosen) {
        Outcome outcome = RUNS.failEach(scenario, chosen);
        assertEquals(List.of(), outcome.findings(), scenario.name() + ": findings");
        assertEquals(List.of(), outcome.notReached(), scenario.name() + ": runs that did not fail at the site the counting run passed there");
    }
}
