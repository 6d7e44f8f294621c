package io.samepage.daemon;

import io.samepage.host.ProcessMemory;
import io.samepage.testing.AllocationFaultLoader;
import io.samepage.testing.AllocationFaultRuns;
import io.samepage.testing.AllocationFaultRuns.Scenario;
import io.samepage.testing.AllocationFaultTestBase;
import io.samepage.testing.AllocationFaults;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

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
 * each site and a seeded sample of the rest; on a heap that stays full (every allocation from the k-th on
 * failing), a launch and a close with a live source, the first at each site and a sample. The seed is
 * printed; {@code -Dallocfault.seed} repeats a sample. The scenarios say what they check:
 * {@link ReloadAllocationScenario}, {@link CountersFileAllocationScenario}, {@link LaunchAllocationScenario},
 * {@link LiveSourceAllocationScenario}, {@link ExitedSourceAllocationScenario},
 * {@link PolicyCloseAllocationScenario}.
 */
class DaemonAllocationFaultTest extends AllocationFaultTestBase {

    /** Runs of a launch or a close, past its sites' first and last allocations. */
    private static final int SAMPLE = 20;

    @Test
    @Timeout(value = 60, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
    void aReloadThatRunsOutOfHeapAppliesAllOrNothingAndTheNextReloadGoesWell() throws Exception {
        Scenario reload = load(ReloadAllocationScenario.class, null);
        assertNoFindingsThenClose(reload, AllocationFaultRuns.every(reload));
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
        assertNoFindings(launch, runs.eachSiteAndASample(launch, SAMPLE));
    }

    @Test
    @Timeout(value = 60, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
    void aCloseThatRunsOutOfHeapStillEndsEveryThreadAndFreesThePort() throws Exception {
        Scenario close = load(LaunchAllocationScenario.class, "close");
        assertNoFindings(close, runs.eachSiteAndASample(close, SAMPLE));
    }

    @Test
    @Timeout(value = 120, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
    void aLaunchWithALiveSourceThatRunsOutOfHeapLeavesNoDescriptorOnItAndTheProcessAsItWas() throws Exception {
        Scenario launch = load(LiveSourceAllocationScenario.class, "launch", ProcessMemory.class);
        assertNoFindingsThenClose(launch, runs.eachSiteAndASample(launch, SAMPLE));
    }

    @Test
    @Timeout(value = 120, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
    void aLaunchWithALiveSourceOnAHeapThatStaysFullLeavesNothingOpenAndTheCountersFileAsItWas() throws Exception {
        Scenario launch = load(LiveSourceAllocationScenario.class, "full-heap launch", ProcessMemory.class);
        assertNoFindingsThenClose(launch, firstAtEachSiteAndASample(launch));
    }

    @Test
    @Timeout(value = 120, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
    void aCloseWithALiveSourceOnAHeapThatStaysFullStillClosesEverythingAndTheCountersFile() throws Exception {
        Scenario close = load(LiveSourceAllocationScenario.class, "full-heap close", ProcessMemory.class);
        assertNoFindingsThenClose(close, firstAtEachSiteAndASample(close));
    }

    @Test
    @Timeout(value = 120, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
    void aRefreshOfALiveSourceThatRunsOutOfHeapLeavesNoDescriptorOnItAndTheNextRefreshGoesWell() throws Exception {
        Scenario refresh = load(LiveSourceAllocationScenario.class, "refresh", ProcessMemory.class);
        assertNoFindingsThenClose(refresh, AllocationFaultRuns.every(refresh));
    }

    @Test
    @Timeout(value = 120, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
    void aRefreshThatRunsOutOfHeapOnASourceWhoseProcessExitedStillTellsItOnce() throws Exception {
        Scenario exited = load(ExitedSourceAllocationScenario.class, null, ProcessMemory.class);
        assertNoFindings(exited, AllocationFaultRuns.every(exited));
    }

    @Test
    @Timeout(value = 120, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
    void aCloseThatRunsOutOfHeapStillWritesBackEveryKsmKnobThePolicyChanged() throws Exception {
        Scenario close = load(PolicyCloseAllocationScenario.class, null, ProcessMemory.class);
        assertNoFindings(close, runs.eachSiteAndASample(close, SAMPLE));
    }

    /**
     * On a heap that stays full, the first allocation at each site and a seeded sample: the last at a site
     * fails what any earlier one there does from then on, so the first stands for the site.
     */
    private List<Long> firstAtEachSiteAndASample(Scenario scenario) {
        Set<Long> chosen = new TreeSet<>(AllocationFaultRuns.firstAtEachSite(scenario));
        chosen.addAll(AllocationFaultRuns.sample(scenario, SAMPLE, runs.seed(scenario.name())));
        return new ArrayList<>(chosen);
    }

    /**
     * Loads {@code type}, made with {@code shape} (or without, if null) and a directory of its own, through
     * a loader of its own that rewrites {@code io.samepage.daemon}'s main classes, and those of the package
     * of each of {@code alsoRewritten} (its module's main classes); then counts it. The runs of each check
     * too that they failed at the site the counting run passed there: the daemon's own threads are idle
     * meanwhile.
     */
    @Test
    @Timeout(value = 60, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
    void aCleanUpWithNoRoomToSuppressACloseFailureStillClosesEveryPart() throws Exception {
        Scenario parts = load(PartsClosedAllocationScenario.class, null);
        assertNoFindings(parts, AllocationFaultRuns.every(parts));
    }

    private Scenario load(Class<?> type, String shape, Class<?>... alsoRewritten) throws Exception {
        List<String> packages = new ArrayList<>(List.of("io.samepage.daemon."));
        List<Class<?>> anchors = new ArrayList<>(List.of(Daemon.class));
        for (Class<?> also : alsoRewritten) {
            packages.add(also.getPackageName() + ".");
            anchors.add(also);
        }
        return loadRewrittenInOwnDirectory(packages, anchors, type, shape);
    }
}
