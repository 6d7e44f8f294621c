package io.samepage.host;

import io.samepage.testing.AllocationFaultLoader;
import io.samepage.testing.AllocationFaultRuns;
import io.samepage.testing.AllocationFaultRuns.Scenario;
import io.samepage.testing.AllocationFaultTestBase;
import io.samepage.testing.AllocationFaults;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Whatever allocation of host mode fails, what it opened or wrote is not left half done: a read of
 * another process leaves no descriptor on it and the instance it opened whole, and the KSM policy loop
 * leaves no knob changed that its close does not write back. The classes of {@code io.samepage.host} are
 * loaded child first by an {@link AllocationFaultLoader}, which rewrites the main ones to ask
 * {@link AllocationFaults} before each allocation (and before each call of {@code Throwable.addSuppressed});
 * {@link AllocationFaultRuns} runs each scenario once to count its allocations, then once for each
 * allocation chosen, failing it with an {@link OutOfMemoryError}: every one for the read; for the policy
 * loop, whose runs each read and write a directory of files many times, the first and the last at each
 * site and a seeded sample of the rest ({@code -Dallocfault.seed} repeats a sample). The scenarios say
 * what they check: {@link ProcessMemoryAllocationScenario}, {@link KsmPolicyLoopAllocationScenario}.
 */
class HostAllocationFaultTest extends AllocationFaultTestBase {

    /** Runs of the policy loop's life, past its sites' first and last allocations. */
    private static final int SAMPLE = 40;

    @Test
    @Timeout(value = 60, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
    void aReadOfAProcessThatRunsOutOfHeapLeavesNoDescriptorOnItAndTheReaderWhole() throws Exception {
        Scenario read = load(ProcessMemoryAllocationScenario.class);
        assertNoFindingsThenClose(read, AllocationFaultRuns.every(read));
    }

    @Test
    @Timeout(value = 60, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
    void aPolicyLoopThatRunsOutOfHeapLeavesNoKnobItsCloseDoesNotWriteBack() throws Exception {
        Scenario loop = load(KsmPolicyLoopAllocationScenario.class, dir);
        assertNoFindings(loop, runs.eachSiteAndASample(loop, SAMPLE));
    }

    /** Loads {@code type}, made with {@code arguments}, through a loader that rewrites host mode's main classes; counts it. */
    private Scenario load(Class<?> type, Object... arguments) throws Exception {
        return loadRewritten(List.of("io.samepage.host."), List.of(ProcessMemory.class), type, type.getSimpleName(),
                arguments);
    }
}
