package io.samepage.daemon;

import static org.junit.jupiter.api.Assertions.assertEquals;

import io.samepage.testing.AllocationFaultLoader;
import io.samepage.testing.AllocationFaultRuns;
import io.samepage.testing.AllocationFaultRuns.Outcome;
import io.samepage.testing.AllocationFaultRuns.Scenario;
import io.samepage.testing.AllocationFaults;
import io.samepage.host.ProcessMemory;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * Whatever allocation of the daemon fails, the reload, counters file publish, launch, close or re-read of
 * a live source it fails in leaves nothing half done: a reload's settings all old or all new, a counters
 * file whole, a launch with nothing left open (no descriptor on a live source's process either), a close
 * with everything closed and every KSM knob its policy changed written back; and the next one goes well.
 * The classes of {@code io.samepage.daemon} are loaded child first by an {@link AllocationFaultLoader},
 * which rewrites the main ones to ask {@link AllocationFaults} before each allocation (and before each call
 * of {@code Throwable.addSuppressed}, which allocates, as a failed launch's clean-up does); for the live
 * sources and the KSM policy, host mode's too (the process reader, the policy loop); the engine, Agrona
 * and, for the others, host mode come from the parent, unchanged. {@link AllocationFaultRuns} runs each
 * scenario once to count the allocations it passes, then once for each allocation chosen, failing it with
 * an {@link OutOfMemoryError}: every one for the reload, the counters file and the re-read; for the
 * launches and the closes, whose runs each wait for a daemon's threads to end, the first and the last at
 * each site and a seeded sample of the rest. The seed is printed; {@code -Dallocfault.seed} repeats a
 * sample. The scenarios say what they check: {@link ReloadAllocationScenario},
 * {@link CountersFileAllocationScenario}, {@link LaunchAllocationScenario}, {@link LiveSourceAllocationScenario},
 * {@link PolicyCloseAllocationScenario}.
 */
class DaemonAllocationFaultTest {

    /** Runs of a launch or a close, past its sites' first and last allocations. */
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

    @Test
    @Timeout(value = 120, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
    void aLaunchWithALiveSourceThatRunsOutOfHeapLeavesNoDescriptorOnItAndTheProcessAsItWas() throws Exception {
        Scenario launch = load(LiveSourceAllocationScenario.class, "launch", ProcessMemory.class);
        try {
            assertNoFindings(launch, RUNS.eachSiteAndASample(launch, SAMPLE));
        } finally {
            ((AutoCloseable) launch.instance()).close();
        }
    }

    @Test
    @Timeout(value = 120, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
    void aRefreshOfALiveSourceThatRunsOutOfHeapLeavesNoDescriptorOnItAndTheNextRefreshGoesWell() throws Exception {
        Scenario refresh = load(LiveSourceAllocationScenario.class, "refresh", ProcessMemory.class);
        try {
            assertNoFindings(refresh, AllocationFaultRuns.every(refresh));
        } finally {
            ((AutoCloseable) refresh.instance()).close();
        }
    }

    @Test
    @Timeout(value = 120, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
    void aCloseThatRunsOutOfHeapStillWritesBackEveryKsmKnobThePolicyChanged() throws Exception {
        Scenario close = load(PolicyCloseAllocationScenario.class, null, ProcessMemory.class);
        assertNoFindings(close, RUNS.eachSiteAndASample(close, SAMPLE));
    }

    /**
     * Loads {@code type}, made with {@code shape} (or without, if null) and a directory of its own, through
     * a loader of its own that rewrites {@code io.samepage.daemon}'s main classes, and those of the package
     * of each of {@code alsoRewritten} (its module's main classes); then counts it.
     */
    private Scenario load(Class<?> type, String shape, Class<?>... alsoRewritten) throws Exception {
        ClassLoader parent = DaemonAllocationFaultTest.class.getClassLoader();
        List<String> packages = new ArrayList<>(List.of("io.samepage.daemon."));
        List<Class<?>> anchors = new ArrayList<>(List.of(Daemon.class));
        for (Class<?> also : alsoRewritten) {
            packages.add(also.getPackageName() + ".");
            anchors.add(also);
        }
        AllocationFaultLoader loader = new AllocationFaultLoader(parent, packages,
                AllocationFaultLoader.fromCodeSourcesOf(parent, anchors.toArray(Class<?>[]::new)),
                Set.of("java/lang/Throwable.addSuppressed"));
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
