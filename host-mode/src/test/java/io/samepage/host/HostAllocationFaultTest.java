package io.samepage.host;

import static org.junit.jupiter.api.Assertions.assertEquals;

import io.samepage.testing.AllocationFaultLoader;
import io.samepage.testing.AllocationFaultRuns;
import io.samepage.testing.AllocationFaultRuns.Outcome;
import io.samepage.testing.AllocationFaultRuns.Scenario;
import io.samepage.testing.AllocationFaults;
import java.nio.file.Path;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

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
class HostAllocationFaultTest {

    /** Runs of the policy loop's life, past its sites' first and last allocations. */
    private static final int SAMPLE = 40;

    private static final AllocationFaultRuns RUNS = new AllocationFaultRuns("HostAllocationFaultTest");

    @TempDir
    Path dir;

    @AfterEach
    void disarm() {
        AllocationFaults.reset();
    }

    @Test
    @Timeout(value = 60, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
    void aReadOfAProcessThatRunsOutOfHeapLeavesNoDescriptorOnItAndTheReaderWhole() throws Exception {
        Scenario read = load(ProcessMemoryAllocationScenario.class);
        try {
            assertNoFindings(read, AllocationFaultRuns.every(read));
        } finally {
            ((AutoCloseable) read.instance()).close();
        }
    }

    @Test
    @Timeout(value = 60, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
    void aPolicyLoopThatRunsOutOfHeapLeavesNoKnobItsCloseDoesNotWriteBack() throws Exception {
        Scenario loop = load(KsmPolicyLoopAllocationScenario.class, dir);
        assertNoFindings(loop, RUNS.eachSiteAndASample(loop, SAMPLE));
    }

    /** Loads {@code type}, made with {@code arguments}, through a loader that rewrites host mode's main classes; counts it. */
    private static Scenario load(Class<?> type, Object... arguments) throws Exception {
        ClassLoader parent = HostAllocationFaultTest.class.getClassLoader();
        AllocationFaultLoader loader = new AllocationFaultLoader(parent, List.of("io.samepage.host."),
                AllocationFaultLoader.fromCodeSourcesOf(parent, ProcessMemory.class),
                Set.of("java/lang/Throwable.addSuppressed"));
        return AllocationFaultRuns.load(loader, type, type.getSimpleName(), arguments);
    }

    /**
     * Fails each chosen allocation in a run of its own; no run may find anything, and each must fail at
     * the site the counting run passed as its k-th.
     */
    private static void assertNoFindings(Scenario scenario, List<Long> chosen) {
        Outcome outcome = RUNS.failEach(scenario, chosen);
        assertEquals(List.of(), outcome.findings(), scenario.name() + ": findings");
        assertEquals(List.of(), outcome.notReached(), scenario.name() + ": runs that did not fail at the site the counting run passed there");
    }
}
