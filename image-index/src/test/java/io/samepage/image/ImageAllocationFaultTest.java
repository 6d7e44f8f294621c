package io.samepage.image;

import io.samepage.core.DedupEngine;
import io.samepage.testing.AllocationFaultLoader;
import io.samepage.testing.AllocationFaultRuns;
import io.samepage.testing.AllocationFaultRuns.Outcome;
import io.samepage.testing.AllocationFaultRuns.Scenario;
import io.samepage.testing.AllocationFaultTestBase;
import io.samepage.testing.AllocationFaults;
import java.util.List;
import org.agrona.collections.Int2IntHashMap;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Whatever allocation of the image index fails, the build, open or load it fails in leaves nothing
 * half done: no index file half written or temporary file left, no mapping of an index file left, no
 * page of a guest loaded past the block where its load stopped, no staging guest, no stuck thread,
 * and the next load goes well. The classes of {@code io.samepage.image} (and, for the loads, the
 * engine's and Agrona's collections under them) are loaded child first by an {@link AllocationFaultLoader},
 * which rewrites them to ask {@link AllocationFaults} before each allocation (and before each call of
 * {@code Throwable.addSuppressed}, which allocates, as failing a batch does); the engine's classes are
 * loaded by it in every case, so that the loader's and the engine's classes are one set.
 * {@link AllocationFaultRuns} runs each scenario once to count the allocations it passes, then once for
 * each allocation chosen, failing it with an {@link OutOfMemoryError}: every one for the build and the open; for the loads, which take longer, the
 * first at each site and a seeded sample of the rest. The seed is printed; {@code -Dallocfault.seed} repeats a sample. The scenarios say what they
 * check: {@link IndexBuildAllocationScenario}, {@link IndexOpenAllocationScenario},
 * {@link ImageLoadAllocationScenario}.
 */
class ImageAllocationFaultTest extends AllocationFaultTestBase {

    /** Runs of a load, past its sites' first allocations: each run loads the image four times. */
    private static final int SAMPLE = 30;

    @Test
    @Timeout(value = 60, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
    void anIndexBuildThatRunsOutOfHeapLeavesNoHalfWrittenIndex() throws Exception {
        Scenario build = load(IndexBuildAllocationScenario.class, null, false);
        assertNoFindings(build, AllocationFaultRuns.every(build), false);
    }

    @Test
    @Timeout(value = 60, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
    void anIndexOpenThatRunsOutOfHeapLeavesNoMappingOfTheFile() throws Exception {
        Scenario open = load(IndexOpenAllocationScenario.class, null, false);
        assertNoFindings(open, AllocationFaultRuns.every(open), true);
    }

    /** A load on the loading thread alone: the first allocation at each site and a seeded sample. */
    @Test
    @Timeout(value = 60, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
    void aLoadOnTheLoadingThreadThatRunsOutOfHeapStopsWholeAndTheNextLoadGoesWell() throws Exception {
        Scenario direct = load(ImageLoadAllocationScenario.class, "direct", true);
        assertNoFindings(direct, runs.eachSiteAndASample(direct, SAMPLE), true);
    }

    /**
     * Loads on two worker threads: the first allocation at each site and a seeded sample; which allocation
     * is the k-th depends on how the workers and the loading thread interleave, so a run need not fail at
     * the site the counting run passed there.
     */
    @Test
    @Timeout(value = 60, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
    void aLoadOnWorkerThreadsThatRunsOutOfHeapStopsWholeAndTheNextLoadGoesWell() throws Exception {
        Scenario workers = load(ImageLoadAllocationScenario.class, "workers", true);
        assertNoFindings(workers, runs.eachSiteAndASample(workers, SAMPLE), false);
    }

    /**
     * Loads on two worker threads while the heap stays full: every allocation from the k-th on fails, k
     * the first allocation at each site, until the loads end. Clean-up that allocates fails too: a worker
     * failing its batch must still finish it, and a staging guest whose destroy fails is destroyed by the
     * next load.
     */
    @Test
    @Timeout(value = 60, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
    void loadsWhileTheHeapStaysFullStopAndTheNextLoadGoesWell() throws Exception {
        Scenario full = load(ImageLoadAllocationScenario.class, "full-heap", true);
        assertNoFindings(full, AllocationFaultRuns.firstAtEachSite(full), false);
    }

    /**
     * Loads {@code type}, made with {@code shape} (or without, if null) and a directory of its own, through
     * a loader of its own that rewrites {@code io.samepage.image}'s main classes, and with {@code engineToo}
     * the engine's and Agrona's collections; then counts it.
     */
    private Scenario load(Class<?> type, String shape, boolean engineToo) throws Exception {
        return loadRewrittenInOwnDirectory(List.of("io.samepage.image.", "io.samepage.core.", "org.agrona.collections."),
                engineToo ? List.of(ImageIndex.class, DedupEngine.class, Int2IntHashMap.class) : List.of(ImageIndex.class),
                type, shape);
    }

    /**
     * Fails each chosen allocation in a run of its own (until one finds a stuck thread); no run may find
     * anything, and where {@code deterministic}, each must fail at the site the counting run passed as its k-th.
     */
    private void assertNoFindings(Scenario scenario, List<Long> chosen, boolean deterministic) {
        Outcome outcome = runs.failEach(scenario, chosen);
        if (deterministic) {
            assertEachFailedAtItsSite(scenario, outcome);
        }
        assertNothingFound(scenario, outcome);
    }
}
