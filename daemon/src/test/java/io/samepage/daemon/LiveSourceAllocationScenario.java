package io.samepage.daemon;

import io.samepage.linux.DiscardList;
import io.samepage.testing.AllocationFaultLoader;
import io.samepage.testing.AllocationFaults;
import io.samepage.testing.ArmedScenario;
import io.samepage.testing.ReadTarget;
import io.samepage.testing.SleepingProcess;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Set;
import java.util.SplittableRandom;
import java.util.concurrent.CopyOnWriteArrayList;

/**
 * A daemon with a live source, a {@code pid:} source of a {@code sleep} this starts, beside a file source,
 * with the k-th allocation failing; for {@link DaemonAllocationFaultTest}, which loads this class through
 * an {@link AllocationFaultLoader} that rewrites host mode's classes too (the process reader the sources
 * open). With {@code "launch"} the daemon's launch fails (or not; a daemon it returns is closed unarmed),
 * with metrics on {@code metrics_port=any} and a counters file over the last run's closed one. With
 * {@code "refresh"} the live sources' re-read fails, the refresher's step ({@link DaemonGuests#refreshLive},
 * run here on the test's thread) on guests loaded once, unarmed.
 *
 * <p>What a run that fails leaves: no descriptor of this process open on the target's {@code /proc/PID}
 * files (its pagemap, its mem) or on a pidfd, and the target as it was: alive, the same mappings with the
 * same flags (no {@code MADV_MERGEABLE} or other advice applied). A launch leaves, as
 * {@link LaunchAllocationScenario}'s, no thread, no listening port, no mapping under the directory and the
 * counters file's path byte for byte as it was. A refresh leaves the last estimate or a whole new one, and
 * the next refresh, unarmed, makes a new one of the one live source.
 *
 * <p>With {@code "full-heap launch"} and {@code "full-heap close"} the heap stays full: every allocation
 * from the k-th on fails ({@link AllocationFaults#failFrom}), so the clean-up after the failure runs out of
 * heap too; with the latter the launch is unarmed and its close fails. A launch leaves what a launch above
 * leaves; a close leaves no thread, no listening port and no socket on its metrics port, no descriptor
 * on the live source, no mapping under the directory, and the counters file reading closed. No run tells the notice handler
 * anything: an {@link OutOfMemoryError} is not a source that cannot be read.
 *
 * <p>{@link #apply} returns the findings of one run, one line each ("" for none); {@link #getAsLong} the
 * allocations the last run passed; {@link #close} closes what the constructor opened and ends the target.
 * Not thread safe.
 */
final class LiveSourceAllocationScenario extends ArmedScenario implements AutoCloseable {

    private final boolean refresh;
    /** The daemon launches unarmed and its close fails. */
    private final boolean failClose;
    /** Every allocation from the k-th fails, not the k-th alone. */
    private final boolean heapStaysFull;
    private final Path dir;
    private final Path counters;
    private final Process target;
    private final List<String> layout;
    private final List<String> lines;
    private final List<String> notices = new CopyOnWriteArrayList<>();
    /** With {@code "refresh"}: the guests whose live source is re-read; else null. */
    private final DaemonGuests guests;
    /** The descriptors on the live source open when the run began. */
    private List<String> openBefore;
    /** With {@code "launch"}: the run's daemon, once launched. */
    private Daemon daemon;

    /**
     * @param shape {@code "launch"}: the launch fails; {@code "refresh"}: a re-read of the live source does;
     *              {@code "full-heap launch"}, {@code "full-heap close"}: the launch or the close does, on a
     *              heap that stays full
     */
    LiveSourceAllocationScenario(String shape, Path dir) throws Exception {
        int index = shape(shape, "launch", "refresh", "full-heap launch", "full-heap close");
        refresh = index == 1;
        heapStaysFull = index >= 2;
        failClose = index == 3;
        this.dir = dir;
        this.counters = dir.resolve("counters");
        DaemonException.Kind.values();     // initialized unarmed, as LaunchAllocationScenario says why
        // The engine's DiscardList opens a pidfd of this process once per JVM, at its first use: opened in
        // the first run it would read as a descriptor left open (a pidfd), when no earlier test made an engine.
        Class.forName(DiscardList.class.getName(), true, DiscardList.class.getClassLoader());
        byte[] dump = new byte[4 * 4096];
        new SplittableRandom(5).nextBytes(dump);
        Files.write(dir.resolve("vm0.img"), dump);
        target = SleepingProcess.start(3600);
        DaemonGuests loaded = null;
        try {
            layout = ReadTarget.memoryLayout(target.pid());
            lines = List.of("source=" + dir.resolve("vm0.img"), "source=pid:" + target.pid(),
                    "counters_file=" + counters, "metrics_port=any", "estimate_interval_seconds=3600",
                    "pages_to_scan=4");
            if (refresh) {
                loaded = DaemonGuests.load(context().conclude());
            }
        } catch (Exception | Error e) {
            target.destroyForcibly();
            throw e;
        }
        guests = loaded;
    }

    /** The daemon's context: its publisher and refresher idle for an hour, so only the step here allocates. */
    private Daemon.Context context() {
        return DaemonConfig.parse("samepage.conf", lines).applyTo(new Daemon.Context().noticeHandler(notices::add)
                .publishIntervalMillis(3_600_000));
    }

    @Override
    protected String run(long failAt) throws Exception {
        daemon = null;      // the last run's, unreachable before the descriptors settle (ReadTarget says why)
        openBefore = ReadTarget.settledDescriptorsOn(target.pid());
        List<String> findings = refresh ? refresh() : launch(failAt);
        if (!target.isAlive()) {
            findings.add(where() + ": the live source's process is gone");
        } else {
            List<String> now = ReadTarget.memoryLayout(target.pid());
            if (!now.equals(layout)) {
                List<String> changed = new ArrayList<>(now);
                changed.removeAll(layout);
                findings.add(where() + ": the live source's mappings or their flags changed: " + changed);
            }
        }
        if (!notices.isEmpty()) {
            findings.add(where() + ": told " + notices);
            notices.clear();
        }
        return String.join("\n", findings);
    }

    /**
     * A launch, failing an allocation, and a close of the daemon it returns; or with {@link #failClose}, a
     * launch and a close failing one: what they left wrong.
     */
    private List<String> launch(long failAt) throws Exception {
        DaemonLeftovers baseline = DaemonLeftovers.baseline();
        byte[] before = Files.exists(counters) ? Files.readAllBytes(counters) : null;
        Set<String> filesBefore = DaemonLeftovers.files(dir);
        List<String> mappingsBefore = DaemonLeftovers.mappingsUnder(dir);
        Daemon.Context context = context();
        int port = 0;
        if (failClose) {
            daemon = Daemon.launch(context);
            port = daemon.metricsPort();
        }
        Throwable thrown = armed(() -> {
            if (heapStaysFull) {
                // Re-armed before the first allocation, so the count is the same: from the k-th on.
                AllocationFaults.failFrom(failAt);
            }
            if (failClose) {
                daemon.close();
            } else {
                daemon = Daemon.launch(context);
            }
        });
        List<String> findings = new ArrayList<>();
        String state = where() + ": " + (failClose ? (thrown == null ? "closed" : "its close failed")
                : thrown == null ? "launched and closed" : "its launch failed");
        expectInjected(thrown, state, findings);
        descriptorsLeft(state, findings);
        if (!failClose && daemon != null) {
            port = daemon.metricsPort();
            daemon.close();
        }
        List<String> threads = baseline.threadsLeft();
        if (!threads.isEmpty()) {
            findings.add(state + ", and threads are left: " + threads);
        }
        Set<Integer> ports = baseline.portsLeft();
        if (!ports.isEmpty()) {
            findings.add(state + ", and ports are left listening: " + ports);
        }
        List<DaemonLeftovers.OwnSocket> onPort = port == 0 ? List.of() : DaemonLeftovers.socketsOn(port);
        if (!onPort.isEmpty()) {
            findings.add(state + ", and sockets of this process hold its metrics port " + port + ": " + onPort);
        }
        List<String> mappings = new ArrayList<>(DaemonLeftovers.mappingsUnder(dir));
        mappings.removeAll(mappingsBefore);
        if (!mappings.isEmpty()) {
            findings.add(state + ", and mappings are left: " + mappings);
        }
        Set<String> files = DaemonLeftovers.files(dir);
        files.removeAll(filesBefore);
        files.removeAll(Set.of("counters", ".counters.lock"));
        if (!files.isEmpty()) {
            findings.add(state + ", and files are left beside the counters file: " + files);
        }
        if (thrown != null && !failClose) {
            byte[] after = Files.exists(counters) ? Files.readAllBytes(counters) : null;
            if (!Arrays.equals(before, after)) {
                findings.add(state + ", and the counters file's path changed");
            }
        } else if (CountersFileReader.read(counters).running()) {
            findings.add(state + ", and the counters file reads running");
        }
        return findings;
    }

    /** A re-read, failing an allocation, then one unarmed: what they left wrong. */
    private List<String> refresh() throws IOException {
        SourceEstimate.Result last = guests.liveEstimate();
        Throwable thrown = armed(guests::refreshLive);
        List<String> findings = new ArrayList<>();
        String state = where() + ": " + (thrown == null ? "refreshed" : "its refresh failed");
        expectInjected(thrown, state, findings);
        descriptorsLeft(state, findings);
        SourceEstimate.Result now = guests.liveEstimate();
        if (thrown != null && now != last && now.estimate().guests().size() != 1) {
            findings.add(state + ", and the estimate kept is neither the last nor a whole new one: "
                    + now.estimate().guests().size() + " guests");
        }
        guests.refreshLive();
        SourceEstimate.Result next = guests.liveEstimate();
        if (next == now || next.estimate().guests().size() != 1 || next.estimate().pagesRead() == 0) {
            findings.add(state + ", and the next refresh did not estimate the live source afresh: "
                    + (next == now ? "the same estimate" : next.estimate().guests().size() + " guests, "
                    + next.estimate().pagesRead() + " pages read"));
        }
        return findings;
    }

    /**
     * Descriptors on the live source open now that were not before the run: a finding. Called right after
     * the step, before the checks allocate much ({@link ReadTarget} says why).
     */
    private void descriptorsLeft(String state, List<String> findings) throws IOException {
        List<String> open = ReadTarget.opened(openBefore, ReadTarget.descriptorsOn(target.pid()));
        if (!open.isEmpty()) {
            findings.add(state + ", and descriptors are left open on the live source: " + open);
        }
    }

    @Override
    public void close() throws InterruptedException {
        try {
            if (guests != null) {
                guests.engine().close();
            }
        } finally {
            target.destroyForcibly();
            target.waitFor();
        }
    }
}
