package io.samepage.density;

import io.samepage.testing.AllocationFaultLoader;
import io.samepage.testing.AllocationFaultRuns;
import io.samepage.testing.AllocationFaultRuns.Scenario;
import io.samepage.testing.AllocationFaultTestBase;
import io.samepage.testing.AllocationFaults;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Whatever allocation of the density suite or the demo fails, what it made is not left behind: no
 * engine's frame pool, page mix, index or loader thread, no temporary file, and an earlier report and
 * index file stand. The classes of {@code io.samepage.density} are loaded child first by an
 * {@link AllocationFaultLoader}, which rewrites the main ones to ask {@link AllocationFaults} before each
 * allocation (and before each call of {@code Throwable.addSuppressed}); {@link AllocationFaultRuns} runs
 * each scenario once to count its allocations, then once for each allocation chosen, failing it with an
 * {@link OutOfMemoryError}: one allocation, the first at each site and a seeded sample of the rest; then,
 * the heap staying full, every allocation from the chosen one on, for a seeded sample
 * ({@code -Dallocfault.seed} repeats a sample). {@link DensityAllocationScenario} says what each run
 * checks; {@link ReportFilesAllocationFaultTest} fails the report's rendering and writing.
 */
class DensityAllocationFaultTest extends AllocationFaultTestBase {

    /** Runs of one allocation failing, past the sites' first allocations. */
    private static final int SAMPLE = 5;
    /** Runs of a heap that stays full: each run of the suite takes a third of a second or so. */
    private static final int FULL_HEAP_SAMPLE = 20;

    @Test
    @Timeout(value = 120, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
    void aSuiteRunThatRunsOutOfHeapLeavesNoEngineNoPageMixAndNoThread() throws Exception {
        assertEachShape("suite");
    }

    @Test
    @Timeout(value = 120, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
    void aDemoThatRunsOutOfHeapLeavesNoEngineAndAWholeIndexFile() throws Exception {
        assertEachShape("demo");
    }

    /** One allocation failing (the first at each site and a sample), then a sample of a heap that stays full. */
    private void assertEachShape(String shape) throws Exception {
        Scenario one = load(shape);
        assertNoFindings(one, firstAtEachSiteAndASample(one, SAMPLE));
        Scenario full = load("full-heap " + shape);
        assertNoFindings(full, AllocationFaultRuns.sample(full, FULL_HEAP_SAMPLE, runs.seed(full.name())));
    }

    private Scenario load(String shape) throws Exception {
        return loadRewrittenInOwnDirectory(List.of("io.samepage.density."), List.of(DensitySuite.class),
                DensityAllocationScenario.class, shape);
    }

    /** The first allocation at each site and a seeded sample of {@code size} more, in order, each once. */
    private List<Long> firstAtEachSiteAndASample(Scenario scenario, int size) {
        java.util.Set<Long> chosen = new java.util.TreeSet<>(AllocationFaultRuns.firstAtEachSite(scenario));
        chosen.addAll(AllocationFaultRuns.sample(scenario, size, runs.seed(scenario.name())));
        return List.copyOf(chosen);
    }
}
