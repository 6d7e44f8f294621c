package io.samepage.cli;

import io.samepage.testing.AllocationFaultLoader;
import io.samepage.testing.AllocationFaultRuns;
import io.samepage.testing.AllocationFaultRuns.Scenario;
import io.samepage.testing.AllocationFaultTestBase;
import io.samepage.testing.AllocationFaults;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Whatever allocation of the CLI fails while a command that writes a file or holds an engine runs, the
 * command exits with the internal error's code and one line on stderr, and leaves its output files as
 * they were or whole, and no temporary file. The classes of {@code io.samepage.cli} are loaded child first
 * by an {@link AllocationFaultLoader}, which rewrites the main ones to ask {@link AllocationFaults} before
 * each allocation (and before each call of {@code Throwable.addSuppressed}); {@link AllocationFaultRuns}
 * runs each command once to count its allocations, then once for each allocation chosen, failing it with an
 * {@link OutOfMemoryError}: the first and the last at each site and a seeded sample of the rest, one
 * allocation failing, then the first at each site with the heap staying full ({@code -Dallocfault.seed}
 * repeats a sample). {@link CommandAllocationScenario} says what each run checks.
 */
class CliAllocationFaultTest extends AllocationFaultTestBase {

    /** Runs of one allocation failing, past the sites' first and last allocations. */
    private static final int SAMPLE = 10;

    @Test
    @Timeout(value = 120, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
    void anIndexBuildThatRunsOutOfHeapExitsSeventyAndLeavesTheEarlierIndex() throws Exception {
        assertEachShape("index");
    }

    @Test
    @Timeout(value = 120, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
    void aDensityBenchThatRunsOutOfHeapExitsSeventyAndLeavesTheEarlierReport() throws Exception {
        assertEachShape("density");
    }

    @Test
    @Timeout(value = 120, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
    void aDemoThatRunsOutOfHeapExitsSeventyAndLeavesAWholeIndex() throws Exception {
        assertEachShape("demo");
    }

    @Test
    @Timeout(value = 120, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
    void aScanThatRunsOutOfHeapExitsSeventy() throws Exception {
        assertEachShape("scan");
    }

    private void assertEachShape(String command) throws Exception {
        Scenario one = load(command);
        assertNoFindings(one, runs.eachSiteAndASample(one, SAMPLE));
        Scenario full = load("full-heap " + command);
        assertNoFindings(full, AllocationFaultRuns.firstAtEachSite(full));
    }

    private Scenario load(String shape) throws Exception {
        return loadRewrittenInOwnDirectory(List.of("io.samepage.cli."), List.of(SamepageCommand.class),
                CommandAllocationScenario.class, shape);
    }
}
