package io.samepage.daemon;

import io.samepage.testing.AllocationFaultLoader;
import io.samepage.testing.ArmedScenario;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Set;
import java.util.SplittableRandom;

/**
 * A small daemon launched and closed with the k-th allocation failing, for {@link DaemonAllocationFaultTest},
 * which loads this class through an {@link AllocationFaultLoader}: two file sources, metrics on
 * {@code metrics_port=any}, a counters file over the last run's closed one. With {@code "launch"} the
 * launch fails (or not) and a daemon it returns is closed unarmed; with {@code "close"} the launch is
 * unarmed and the close fails. Its publisher is idle (an interval of an hour), so only the launch or the
 * close allocates.
 *
 * <p>A launch that fails leaves nothing: no thread of the daemon's, no port it listened on (this process's
 * own listening sockets), no mapping of a file in the directory, and the counters file's path as it was,
 * byte for byte, with no file beside it but its lock. A close that fails still closes everything: its
 * threads end, no socket of this process holds its port (bound, listening or connected), no mapping is
 * left and the counters file reads closed. Either way, the next launch goes well: the next run's, which
 * must fail only where it is made to (with {@code "close"} it is unarmed, and a throw from it is a
 * finding: "the checks threw").
 *
 * <p>{@link #apply} returns the findings of one run, one line each ("" for none); {@link #getAsLong} the
 * allocations the last run passed. Not thread safe.
 */
final class LaunchAllocationScenario extends ArmedScenario {

    private final boolean failClose;
    private final Path dir;
    private final Path counters;
    private final List<String> lines;
    /** The run's daemon, once launched. */
    private Daemon daemon;

    /** @param shape {@code "launch"}: the launch fails; {@code "close"}: the close does */
    LaunchAllocationScenario(String shape, Path dir) throws Exception {
        failClose = shape(shape, "launch", "close") == 1;
        this.dir = dir;
        this.counters = dir.resolve("counters");
        // Initialized here, unarmed: an enum's constructors are rewritten, and one that failed in its
        // initializer would leave the class unusable (NoClassDefFoundError) for every later run.
        DaemonException.Kind.values();
        SplittableRandom random = new SplittableRandom(3);
        byte[] dump = new byte[4 * 4096];
        random.nextBytes(dump);
        Files.write(dir.resolve("vm0.img"), dump);
        System.arraycopy(dump, 0, dump, 4096, 4096);
        Files.write(dir.resolve("vm1.img"), dump);
        lines = List.of("source=" + dir.resolve("vm0.img"), "source=" + dir.resolve("vm1.img"),
                "counters_file=" + counters, "metrics_port=any", "pages_to_scan=4");
    }

    private Daemon.Context context() {
        return DaemonConfig.parse("samepage.conf", lines).applyTo(new Daemon.Context().noticeHandler(_ -> { })
                .publishIntervalMillis(3_600_000));
    }

    @Override
    protected String run(long failAt) throws Exception {
        daemon = null;
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
            if (failClose) {
                daemon.close();
            } else {
                daemon = Daemon.launch(context);
            }
        });
        List<String> findings = new ArrayList<>();
        expectInjected(thrown, where(), findings);
        String state = failClose ? (thrown == null ? "closed" : "its close failed")
                : thrown == null ? "launched" : "its launch failed";
        if (!failClose && thrown == null) {
            port = daemon.metricsPort();
            daemon.close();
        }
        List<String> threads = baseline.threadsLeft();
        if (!threads.isEmpty()) {
            findings.add(where() + ": " + state + ", and threads are left: " + threads);
        }
        Set<Integer> ports = baseline.portsLeft();
        if (!ports.isEmpty()) {
            findings.add(where() + ": " + state + ", and ports are left listening: " + ports);
        }
        List<DaemonLeftovers.OwnSocket> onPort = port == 0 ? List.of() : DaemonLeftovers.socketsOn(port);
        if (!onPort.isEmpty()) {
            findings.add(where() + ": " + state + ", and sockets of this process hold its metrics port " + port
                    + ": " + onPort);
        }
        List<String> mappings = new ArrayList<>(DaemonLeftovers.mappingsUnder(dir));
        mappings.removeAll(mappingsBefore);
        if (!mappings.isEmpty()) {
            findings.add(where() + ": " + state + ", and mappings are left: " + mappings);
        }
        Set<String> files = DaemonLeftovers.files(dir);
        files.removeAll(filesBefore);
        files.removeAll(Set.of("counters", ".counters.lock"));
        if (!files.isEmpty()) {
            findings.add(where() + ": " + state + ", and files are left beside the counters file: " + files);
        }
        if (thrown != null && !failClose) {
            byte[] after = Files.exists(counters) ? Files.readAllBytes(counters) : null;
            if (!Arrays.equals(before, after)) {
                findings.add(where() + ": " + state + ", and the counters file's path changed: "
                        + (after == null ? "no file" : describe(CountersFileReader.read(counters))));
            }
        } else if (CountersFileReader.read(counters).running()) {
            findings.add(where() + ": " + state + ", and the counters file reads running");
        }
        return String.join("\n", findings);
    }

    private static String describe(CountersFileReader.Snapshot s) {
        return "pid " + s.pid() + (s.running() ? " running" : " closed") + " heartbeat " + s.heartbeatMillis();
    }
}
