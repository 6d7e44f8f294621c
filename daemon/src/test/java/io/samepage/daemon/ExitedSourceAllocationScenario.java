package io.samepage.daemon;

import io.samepage.testing.AllocationFaultLoader;
import io.samepage.testing.ArmedScenario;
import io.samepage.testing.SleepingProcess;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;

/**
 * A {@code pid:} source whose process has exited, re-read with the k-th allocation failing, for
 * {@link DaemonAllocationFaultTest}, which loads this class through an {@link AllocationFaultLoader} that
 * rewrites host mode's classes too. Each run starts a {@code sleep}, loads guests with it as their one
 * source (unarmed), ends it, then runs the refresher's step ({@link DaemonGuests#refreshLive}) armed and
 * once more unarmed.
 *
 * <p>What is checked: a source that ended is told exactly once over the two steps, the notice that its
 * process has exited. Told never means it was dropped unsaid (marked exited, so never read again, but
 * the notice not given); told twice means the first step told it and did not keep it dropped.
 *
 * <p>{@link #apply} returns the findings of one run, one line each ("" for none); {@link #getAsLong} the
 * allocations the last run passed. Not thread safe.
 */
final class ExitedSourceAllocationScenario extends ArmedScenario {

    private final List<String> notices = new CopyOnWriteArrayList<>();

    ExitedSourceAllocationScenario(Path dir) {
        DaemonException.Kind.values();     // initialized unarmed, as LaunchAllocationScenario says why
    }

    @Override
    protected String run(long failAt) throws Exception {
        notices.clear();
        Process target = SleepingProcess.start(3600);
        DaemonGuests guests;
        try {
            guests = DaemonGuests.load(DaemonConfig.parse("samepage.conf", List.of("source=pid:" + target.pid(),
                    "estimate_interval_seconds=3600")).applyTo(new Daemon.Context().noticeHandler(notices::add))
                    .conclude());
        } finally {
            target.destroyForcibly();
            target.waitFor();
        }
        List<String> findings = new ArrayList<>();
        try {
            notices.clear();
            Throwable thrown = armed(guests::refreshLive);
            String state = where() + ": " + (thrown == null ? "refreshed" : "its refresh failed");
            expectInjected(thrown, state, findings);
            guests.refreshLive();
            long told = notices.stream().filter(n -> n.contains("the process has exited")).count();
            if (told != 1) {
                findings.add(state + ", and the exit of the live source was told " + told + " times over this "
                        + "refresh and the next, not once: " + notices);
            }
        } finally {
            guests.engine().close();
        }
        return String.join("\n", findings);
    }
}
