package io.samepage.daemon;

import io.samepage.testing.AllocationFaultLoader;
import io.samepage.testing.ArmedScenario;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * The clean-up of a failed launch (and of {@link Daemon#close}) on a heap that has no room for a suppressed
 * throwable, for {@link DaemonAllocationFaultTest}, which loads this class through an
 * {@link AllocationFaultLoader} that counts each {@code Throwable.addSuppressed} as an allocation. Each run
 * closes two parts whose closes throw, one after the other, through {@link DaemonLaunch#close}, after a
 * failure, with the k-th allocation failing.
 *
 * <p>What is checked: both parts are closed, whatever adding the first close's failure as suppressed
 * throws, and what the clean-up returns is the launch's own failure. Before, an OutOfMemoryError there
 * came out of the first close and the parts after it (the metrics server, the engine, the counters file
 * in a launch) were never closed.
 *
 * <p>{@link #apply} returns the findings of one run, one line each ("" for none); {@link #getAsLong} the
 * allocations the last run passed. Not thread safe.
 */
final class PartsClosedAllocationScenario extends ArmedScenario {

    PartsClosedAllocationScenario(Path dir) {
    }

    @Override
    protected String run(long failAt) {
        RuntimeException launchFailed = new IllegalStateException("the launch's failure (test)");
        int[] closed = {0};
        AutoCloseable first = () -> {
            closed[0]++;
            throw new IllegalStateException("the first part's close (test)");
        };
        AutoCloseable second = () -> {
            closed[0]++;
            throw new IllegalStateException("the second part's close (test)");
        };
        Throwable[] returned = new Throwable[1];
        Throwable thrown = armed(() -> returned[0] = DaemonLaunch.close(second, DaemonLaunch.close(first, launchFailed)));
        String state = where() + ": " + (thrown == null ? "cleaned up" : "its clean-up threw");
        List<String> findings = new ArrayList<>();
        expectInjected(thrown, state, findings);
        if (closed[0] != 2) {
            findings.add(state + ", and " + closed[0] + " of the 2 parts were closed");
        }
        if (thrown == null && returned[0] != launchFailed) {
            findings.add(state + ", and returned " + returned[0] + ", not the launch's own failure");
        }
        return String.join("\n", findings);
    }
}
