package io.samepage.daemon;

import static org.junit.jupiter.api.Assertions.assertEquals;

import io.samepage.host.ProcessMemory;
import io.samepage.testing.AllocationFaultLoader;
import io.samepage.testing.AllocationFaultRuns;
import io.samepage.testing.AllocationFaultRuns.Outcome;
import io.samepage.testing.AllocationFaultRuns.Scenario;
import io.samepage.testing.AllocationFaults;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * A failure whose clean-up throws the very same error again reaches the caller as it is. HotSpot never
 * makes an {@link OutOfMemoryError} for a full heap: it throws a preallocated one, and once its four with
 * a stack trace are used up, one instance every time. {@link Throwable#addSuppressed} of an instance to
 * itself throws {@link IllegalArgumentException}, which took the failure's place. Here every allocation
 * fails with one error ({@link AllocationFaults#failFromWithOneError}) from the first in the step that the
 * clean-up runs again on: the clean-up's own first allocation throws that error again.
 * {@link SameErrorTwiceScenario} says what is checked.
 *
 * <p>The loader rewrites {@code io.samepage.daemon}'s and host mode's main classes but, unlike
 * {@link DaemonAllocationFaultTest}'s, does not count {@code Throwable.addSuppressed} as an allocation: it
 * refuses an instance added to itself before it allocates anything, and a heap that fails every allocation
 * at the call would throw the one error there first and hide the refusal.
 */
class DaemonSameErrorTwiceTest {

    private static final AllocationFaultRuns RUNS = new AllocationFaultRuns("DaemonSameErrorTwiceTest");

    @TempDir
    Path dir;

    @AfterEach
    void disarm() {
        AllocationFaults.reset();
    }

    /** The knob changes fail before the first, and setting the old values back throws the same error. */
    @Test
    @Timeout(value = 60, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
    void aReloadWhoseRestoreThrowsItsOwnErrorAgainThrowsThatError() throws Exception {
        assertNoFindings(load("reload"), "Reload.set:");
    }

    /** The loop's close fails before it restores a knob, and the agent's second close throws the same error. */
    @Test
    @Timeout(value = 60, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
    void aPolicyCloseWhoseSecondCloseThrowsItsOwnErrorAgainThrowsThatError() throws Exception {
        assertNoFindings(load("policy close"), "KsmPolicyLoop.close:");
    }

    private Scenario load(String shape) throws Exception {
        ClassLoader parent = DaemonSameErrorTwiceTest.class.getClassLoader();
        AllocationFaultLoader loader = new AllocationFaultLoader(parent, List.of("io.samepage.daemon.", "io.samepage.host."),
                AllocationFaultLoader.fromCodeSourcesOf(parent, Daemon.class, ProcessMemory.class));
        Path own = Files.createDirectory(dir.resolve(shape.replace(' ', '-')));
        return AllocationFaultRuns.load(loader, SameErrorTwiceScenario.class, "SameErrorTwiceScenario " + shape, shape, own);
    }

    /** Fails from the first allocation at a site of {@code method} ({@code Class.method:}) on; no finding. */
    private static void assertNoFindings(Scenario scenario, String method) {
        int first = 0;
        while (first < scenario.sites().size() && !scenario.sites().get(first).startsWith(method)) {
            first++;
        }
        if (first == scenario.sites().size()) {
            throw new AssertionError(scenario.name() + ": no allocation at " + method + " in " + scenario.sites());
        }
        Outcome outcome = RUNS.failEach(scenario, List.of(first + 1L));
        assertEquals(List.of(), outcome.findings(), scenario.name() + ": findings");
        assertEquals(List.of(), outcome.notReached(), scenario.name() + ": the run did not fail at " + method);
    }
}
