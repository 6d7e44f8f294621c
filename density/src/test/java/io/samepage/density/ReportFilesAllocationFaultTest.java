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
 * Whatever allocation of a density report's rendering or writing fails ({@link DensityReport},
 * {@link ReportFiles#write}), the report's directory holds the earlier report, byte for byte, and no
 * temporary file. The classes of {@code io.samepage.density} are loaded child first by an
 * {@link AllocationFaultLoader}, which rewrites the main ones to ask {@link AllocationFaults} before each
 * allocation; {@link AllocationFaultRuns} fails one allocation a run, the first and the last at each site
 * and a seeded sample of the rest ({@code -Dallocfault.seed} repeats a sample), then, the heap staying
 * full, every allocation from the last at each site on: the write's clean-up after a failure runs out of
 * heap too. {@link DensityAllocationScenario} ({@code "report"}) says what each run checks.
 */
class ReportFilesAllocationFaultTest extends AllocationFaultTestBase {

    /** Runs past the sites' first and last allocations. */
    private static final int SAMPLE = 10;

    @Test
    @Timeout(value = 120, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
    void aReportThatRunsOutOfHeapLeavesTheEarlierReportWholeAndNoTemporaryFile() throws Exception {
        Scenario one = load("report");
        assertNoFindings(one, runs.eachSiteAndASample(one, SAMPLE));
        Scenario full = load("full-heap report");
        assertNoFindings(full, AllocationFaultRuns.lastAtEachSite(full));
    }

    private Scenario load(String shape) throws Exception {
        return loadRewrittenInOwnDirectory(List.of("io.samepage.density."), List.of(DensitySuite.class),
                DensityAllocationScenario.class, shape);
    }
}
