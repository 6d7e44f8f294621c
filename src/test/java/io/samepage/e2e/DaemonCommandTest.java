package io.samepage.e2e;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import io.samepage.linux.UnixDatagram;
import java.io.IOException;
import java.net.ServerSocket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code samepage daemon} and {@code samepage stat} through the launcher: a daemon over two 512 KiB
 * dumps that share 64 pages (at different offsets) merges them, {@code stat} and {@code /metrics} agree
 * on {@code pages_sharing}, and a real SIGTERM stops it with exit 0 and the counters file closed.
 */
class DaemonCommandTest {

    private static final int PAGE = 4096;
    private static final int SHARED = 64;
    private static final int UNIQUE = 64;
    private static final long WAIT_SECONDS = 60;

    @TempDir
    Path dir;

    private void writeDumps() throws IOException {
        SplittableRandom random = new SplittableRandom(7);
        byte[][] shared = new byte[SHARED][PAGE];
        for (byte[] page : shared) {
            random.nextBytes(page);
        }
        for (int d = 0; d < 2; d++) {
            byte[] dump = new byte[(SHARED + UNIQUE) * PAGE];
            random.nextBytes(dump);
            for (int s = 0; s < SHARED; s++) {
                System.arraycopy(shared[s], 0, dump, ((s * 2 + d) % (SHARED + UNIQUE)) * PAGE, PAGE);
            }
            Files.write(dir.resolve("vm" + d + ".img"), dump);
        }
    }

    @Test
    void daemonMergesPublishesAndStopsCleanlyOnSigterm() throws Exception {
        writeDumps();
        Path counters = Files.createDirectories(dir.resolve("run")).resolve("counters");
        Path config = config("metrics_port=any", "counters_file=" + counters);
        Process daemon = start(config);
        try {
            int port = Samepage.daemonMetricsPort(daemon, dir.resolve("daemon.out"), dir.resolve("daemon.err"), WAIT_SECONDS);
            JsonNode stat = awaitSharing(counters, daemon);
            assertEquals("running", stat.get("state").asText());
            assertEquals(daemon.pid(), stat.get("pid").asLong());
            assertEquals(SHARED, stat.get("pages_shared").asLong());
            assertEquals(2, stat.get("guests").asLong());

            String metrics = get(port);
            assertEquals(SHARED, metric(metrics, "samepage_pages_sharing"), metrics);
            assertEquals(SHARED, metric(metrics, "samepage_pages_shared"), metrics);
            assertTrue(metric(metrics, "samepage_full_scans_total") >= 1, metrics);
            assertTrue(Pattern.compile("(?m)^samepage_guest_merging_pages\\{[^}]*guest=\""
                    + Pattern.quote(dir.resolve("vm0.img").toString()) + "\"").matcher(metrics).find(), metrics);

            daemon.destroy();
            assertTrue(daemon.waitFor(WAIT_SECONDS, TimeUnit.SECONDS), "the daemon did not stop on SIGTERM");
            assertEquals(0, daemon.exitValue(), () -> "exit code after SIGTERM; stderr: " + stderr());
            JsonNode closed = Samepage.json("stat", "--json", "--counters-file", counters.toString());
            assertEquals("closed", closed.get("state").asText());
            assertEquals(SHARED, closed.get("pages_sharing").asLong());
        } finally {
            daemon.destroyForcibly();
        }
    }

    /** A config over the two dumps, merging fast, with {@code lines} added. */
    private Path config(String... lines) throws IOException {
        if (!Files.exists(dir.resolve("vm0.img"))) {
            writeDumps();
        }
        return Files.writeString(dir.resolve("samepage.conf"), String.join("\n",
                "# two dumps with 64 pages in common",
                "source=" + dir.resolve("vm0.img"),
                "source=" + dir.resolve("vm1.img"),
                "pages_to_scan=1000",
                "sleep_millisecs=20",
                String.join("\n", lines),
                ""));
    }

    /** Starts {@code samepage daemon --config config}, its output in daemon.out and daemon.err. */
    private Process start(Path config) throws IOException {
        return new ProcessBuilder(Samepage.root().resolve("samepage").toString(), "daemon", "--config", config.toString())
                .directory(Samepage.root().toFile())
                .redirectOutput(dir.resolve("daemon.out").toFile())
                .redirectError(dir.resolve("daemon.err").toFile())
                .start();
    }

    @Test
    void aCountersFileThatIsNotOneIsRefusedAndLeftAsItWas() throws Exception {
        Path config = config("counters_file=" + dir.resolve("samepage.conf"));
        for (Path foreign : java.util.List.of(config, dir.resolve("vm0.img"))) {
            Files.writeString(config, Files.readString(config).replaceAll("counters_file=.*", "counters_file=" + foreign));
            byte[] before = Files.readAllBytes(foreign);
            Samepage.Run run = Samepage.run("daemon", "--config", config.toString());
            assertEquals(2, run.exitCode(), run.stderr());
            assertEquals("samepage daemon: counters file " + foreign + ": exists and is not a samepage counters file; "
                    + "not replacing it (remove it, or give another counters_file)\n", run.stderr());
            assertTrue(java.util.Arrays.equals(before, Files.readAllBytes(foreign)), foreign + " changed");
        }
    }

    @Test
    void aSecondDaemonOnTheSameCountersFileIsRefusedAndTheFirstRunsOn() throws Exception {
        Path counters = dir.resolve("counters");
        Path config = config("counters_file=" + counters);
        Process first = start(config);
        try {
            awaitSharing(counters, first);
            Samepage.Run second = Samepage.run("daemon", "--config", config.toString());
            assertEquals(2, second.exitCode(), second.stderr());
            assertTrue(second.stderr().startsWith("samepage daemon: counters file " + counters + ": in use: the samepage "
                    + "daemon with pid " + first.pid() + " holds its lock "), second.stderr());
            assertEquals(1, second.stderr().lines().count(), second.stderr());
            // The first runs on: its heartbeat moves after the refusal. (Its age says nothing a loaded
            // machine cannot make up: a daemon descheduled for seconds is still running.)
            long refusedAt = heartbeatMillis(counters);
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(WAIT_SECONDS);
            while (heartbeatMillis(counters) == refusedAt) {
                assertTrue(first.isAlive(), "the first daemon exited: " + stderr());
                assertTrue(System.nanoTime() - deadline < 0, "no heartbeat of the first daemon in " + WAIT_SECONDS
                        + " s after the second was refused");
                Thread.sleep(20);
            }
            JsonNode stat = Samepage.json("stat", "--json", "--counters-file", counters.toString());
            assertEquals("running", stat.get("state").asText());
            assertEquals(first.pid(), stat.get("pid").asLong());
        } finally {
            first.destroy();
            first.waitFor(WAIT_SECONDS, TimeUnit.SECONDS);
            first.destroyForcibly();
        }
    }

    @Test
    void aStartThatFailsLeavesTheOldCountersFileByteForByte() throws Exception {
        Path counters = dir.resolve("counters");
        Process first = start(config("counters_file=" + counters));
        try {
            awaitSharing(counters, first);
        } finally {
            first.destroy();
            assertTrue(first.waitFor(WAIT_SECONDS, TimeUnit.SECONDS));
        }
        byte[] before = Files.readAllBytes(counters);
        try (ServerSocket taken = new ServerSocket(0, 1, java.net.InetAddress.getLoopbackAddress())) {
            Samepage.Run run = Samepage.run("daemon", "--config",
                    config("counters_file=" + counters, "metrics_port=" + taken.getLocalPort()).toString());
            assertEquals(2, run.exitCode(), run.stderr());
            assertTrue(run.stderr().startsWith("samepage daemon: metrics_port " + taken.getLocalPort()), run.stderr());
        }
        assertTrue(java.util.Arrays.equals(before, Files.readAllBytes(counters)), "the old counters file changed");
    }

    @Test
    void aPoolTheSourcesDoNotFitIsABadConfigSoSystemdDoesNotRestartIt() throws Exception {
        byte[] distinct = new byte[2 << 20];
        new SplittableRandom(3).nextBytes(distinct);
        Path big = Files.write(dir.resolve("big.img"), distinct);
        Path config = Files.writeString(dir.resolve("pool.conf"), "source=" + big + "\npool_mib=1\ncounters_file="
                + dir.resolve("counters") + "\n");
        Samepage.Run run = Samepage.run("daemon", "--config", config.toString());
        assertEquals(2, run.exitCode(), "RestartPreventExitStatus=2 of the shipped unit: " + run.stderr());
        assertTrue(run.stderr().startsWith("samepage daemon: pool_mib=1 is too small for the sources ("), run.stderr());
        assertTrue(Files.readString(Samepage.root().resolve("cli/src/dist/samepage.service"))
                .contains("\nRestartPreventExitStatus=2\n"), "the unit's rule this test stands for");
    }

    /**
     * A pool whose frame table the Java heap cannot hold (12 bytes a frame) is a bad config, refused before
     * anything starts. It was an OutOfMemoryError in the daemon's start, which skipped closing the
     * shutdown barrier: the process printed one line, then hung, deaf to SIGTERM.
     */
    @Test
    void aPoolTheHeapCannotHoldIsRefusedAndTheProcessEnds() throws Exception {
        writeDumps();
        Path config = config("pool_mib=8388607", "counters_file=" + dir.resolve("counters"));
        Samepage.Run run = Samepage.run(java.util.Map.of("SAMEPAGE_JAVA_OPTS", "-Xmx256m"), null,
                "daemon", "--config", config.toString());
        assertEquals(2, run.exitCode(), run.stderr());
        assertTrue(run.stderr().startsWith("samepage daemon: pool_mib 8388607: a pool of 8388607 MiB needs "),
                run.stderr());
        assertTrue(run.stderr().contains(" MiB of Java heap for its frame table (12 bytes a frame)"), run.stderr());
        assertEquals(1, run.stderr().lines().count(), run.stderr());
        Samepage.Run scan = Samepage.run(java.util.Map.of("SAMEPAGE_JAVA_OPTS", "-Xmx256m"), null,
                "scan", dir.resolve("vm0.img").toString(), "--pool-mib", "8388607");
        assertEquals(2, scan.exitCode(), scan.stderr());
        assertTrue(scan.stderr().startsWith("samepage scan: --pool-mib 8388607: a pool of 8388607 MiB needs"),
                scan.stderr());
    }

    /**
     * An OutOfMemoryError in the daemon's start (here a 32 GiB sparse source, whose page table a 96 MiB heap
     * cannot hold) is one line and exit 70, and the process ends: it used to skip closing the shutdown
     * barrier, whose hook then kept the JVM from exiting, even on SIGTERM.
     */
    @Test
    void runningOutOfMemoryWhileStartingEndsTheProcess() throws Exception {
        Path sparse = dir.resolve("sparse.img");
        try (java.io.RandomAccessFile file = new java.io.RandomAccessFile(sparse.toFile(), "rw")) {
            file.setLength(32L << 30);
        }
        Path config = Files.writeString(dir.resolve("sparse.conf"), "source=" + sparse + "\npool_mib=64\n"
                + "counters_file=" + dir.resolve("counters") + "\n");
        Samepage.Run run = Samepage.run(java.util.Map.of("SAMEPAGE_JAVA_OPTS", "-Xmx96m"), null,
                "daemon", "--config", config.toString());
        assertEquals(70, run.exitCode(), run.stderr());
        assertTrue(run.stderr().startsWith("samepage daemon: out of memory"), run.stderr());
        assertEquals(1, run.stderr().lines().count(), run.stderr());
    }

    /**
     * SIGTERM while the daemon loads a large source (a 32 GiB sparse file, about 40 s to read here) was
     * heard only once the launch was done: the daemon printed its start line, told systemd READY, and only
     * then stopped. The launch is interrupted now: the process ends within seconds, exit 0, having printed
     * no start line, and leaves no counters file and no temporary file (the lock file stays, as always).
     */
    @Test
    void sigtermDuringALongLaunchStopsItPromptlyAndLeavesNothing() throws Exception {
        Path sparse = dir.resolve("sparse.img");
        try (java.io.RandomAccessFile file = new java.io.RandomAccessFile(sparse.toFile(), "rw")) {
            file.setLength(32L << 30);
        }
        Path run = Files.createDirectories(dir.resolve("run"));
        Path config = Files.writeString(dir.resolve("sparse.conf"), "source=" + sparse + "\npool_mib=64\n"
                + "counters_file=" + run.resolve("counters") + "\n");
        Process daemon = start(config);
        try {
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(WAIT_SECONDS);
            while (namesIn(run).stream().noneMatch(name -> name.endsWith(".new")) && daemon.isAlive()
                    && System.nanoTime() - deadline < 0) {
                Thread.sleep(10);
            }
            assertTrue(daemon.isAlive() && namesIn(run).stream().anyMatch(name -> name.endsWith(".new")),
                    "the launch did not get to its counters file: " + stderr());
            Thread.sleep(500);
            daemon.destroy();
            assertTrue(daemon.waitFor(20, TimeUnit.SECONDS), "still running 20 s after SIGTERM: " + stderr());
            assertEquals(0, daemon.exitValue(), this::stderr);
            assertEquals("", Files.readString(dir.resolve("daemon.out")), "the launch went on to the end");
            assertEquals("samepage daemon: stopped while starting; nothing is left running\n", stderr());
            assertEquals(List.of(".counters.lock"), namesIn(run));
        } finally {
            daemon.destroyForcibly();
        }
    }

    /**
     * The heartbeat of the counters file at {@code counters}: epoch milliseconds at byte 32, in the
     * machine's byte order (the layout documented in the daemon's CountersFile), read as any other
     * process reads it.
     */
    private static long heartbeatMillis(Path counters) throws IOException {
        java.nio.ByteBuffer word = java.nio.ByteBuffer.allocate(Long.BYTES).order(java.nio.ByteOrder.nativeOrder());
        try (java.nio.channels.FileChannel file = java.nio.channels.FileChannel.open(counters)) {
            file.read(word, 32);
        }
        return word.getLong(0);
    }

    private static List<String> namesIn(Path directory) throws IOException {
        try (java.util.stream.Stream<Path> files = Files.list(directory)) {
            return files.map(file -> file.getFileName().toString()).sorted().toList();
        }
    }

    @Test
    void aCountersFileUnderAMissingDirectoryIsRefusedNamingIt() throws Exception {
        Path missing = dir.resolve("no-such-dir");
        Samepage.Run run = Samepage.run("daemon", "--config",
                config("counters_file=" + missing.resolve("counters")).toString());
        assertEquals(2, run.exitCode(), run.stderr());
        assertEquals("samepage daemon: counters file " + missing.resolve("counters") + ": cannot be created: directory "
                + missing + " does not exist (create it, or give another counters_file)\n", run.stderr());
        assertFalse(Files.exists(missing));
    }

    @Test
    void sighupReloadsTheConfigAndSystemdHearsReadyReloadingAndStopping() throws Exception {
        Path counters = dir.resolve("counters");
        Path config = config("counters_file=" + counters);
        String notifySocket = dir.resolve("notify").toString();
        try (UnixDatagram systemd = UnixDatagram.bind(notifySocket)) {
            Process daemon = startNotifying(config, notifySocket);
            try {
                assertEquals("READY=1\nSTATUS=merging 2 guests", systemd.receive(Duration.ofSeconds(WAIT_SECONDS)),
                        this::stderr);
                assertTrue(Files.exists(counters), "READY=1 comes once the counters file is in place");

                Files.writeString(config, Files.readString(config).replace("pages_to_scan=1000", "pages_to_scan=500"));
                assertReloaded(daemon, systemd, "samepage daemon: reloaded " + config + ": pages_to_scan 1000 -> 500\n");

                Files.writeString(config, Files.readString(config) + "sleep_millisecs=7\n");
                assertReloaded(daemon, systemd, "samepage daemon: " + config + ":7: sleep_millisecs: given twice "
                        + "(first on line 5); reload refused, running on with the old config\n");

                Files.writeString(config, Files.readString(config).replace("sleep_millisecs=7\n", "metrics_port=9\n"));
                assertReloaded(daemon, systemd, "samepage daemon: " + config + ": metrics_port changed: it takes effect "
                        + "only with a restart; reload refused, running on with the old config\n");

                Samepage.Run follow = Samepage.run("stat", "--json", "--follow", "--count", "2", "--interval", "0.2",
                        "--counters-file", counters.toString());
                assertEquals(0, follow.exitCode(), follow.stderr());
                assertEquals(2, follow.stdout().lines().filter(line -> line.contains("\"state\":\"running\"")).count(),
                        follow.stdout());

                daemon.destroy();
                assertEquals("STOPPING=1", systemd.receive(Duration.ofSeconds(WAIT_SECONDS)));
                assertTrue(daemon.waitFor(WAIT_SECONDS, TimeUnit.SECONDS), "the daemon did not stop on SIGTERM");
                assertEquals(0, daemon.exitValue(), this::stderr);
            } finally {
                daemon.destroyForcibly();
            }
        }
    }

    /**
     * The daemon's notices go to the operator's terminal: one naming a config file in a directory named
     * with a newline and an ESC sequence stays one line, with both escaped.
     */
    @Test
    void aReloadNoticeNamesACraftedConfigPathOnOneEscapedLine() throws Exception {
        Path config = Files.createDirectory(dir.resolve("etc\n\u001b[31m")).resolve("samepage.conf");
        Files.move(config("counters_file=" + dir.resolve("counters")), config);
        String notifySocket = dir.resolve("notify").toString();
        try (UnixDatagram systemd = UnixDatagram.bind(notifySocket)) {
            Process daemon = startNotifying(config, notifySocket);
            try {
                assertEquals("READY=1\nSTATUS=merging 2 guests", systemd.receive(Duration.ofSeconds(WAIT_SECONDS)),
                        this::stderr);
                Files.writeString(config, Files.readString(config).replace("pages_to_scan=1000", "pages_to_scan=500"));
                String shown = config.toString().replace("\n", "\\x0a").replace("\u001b", "\\x1b");
                assertReloaded(daemon, systemd, "samepage daemon: reloaded " + shown + ": pages_to_scan 1000 -> 500\n");
                daemon.destroy();
                assertTrue(daemon.waitFor(WAIT_SECONDS, TimeUnit.SECONDS), "the daemon did not stop on SIGTERM");
            } finally {
                daemon.destroyForcibly();
            }
        }
    }

    /** Under nohup SIGHUP stays ignored (the JVM does not take it over): the daemon says it cannot reload. */
    @Test
    void aDaemonStartedUnderNohupSaysSighupCannotReloadIt() throws Exception {
        Path config = config("counters_file=" + dir.resolve("counters"));
        String notifySocket = dir.resolve("notify").toString();
        try (UnixDatagram systemd = UnixDatagram.bind(notifySocket)) {
            Process daemon = startNotifying(config, notifySocket, "nohup");
            try {
                assertEquals("READY=1\nSTATUS=merging 2 guests", systemd.receive(Duration.ofSeconds(WAIT_SECONDS)),
                        this::stderr);
                assertTrue(stderr().contains("samepage daemon: SIGHUP is ignored in this process (started under "
                        + "nohup?), so it cannot reload the config; restart the daemon to change it\n"), stderr());
                daemon.destroy();
                assertTrue(daemon.waitFor(WAIT_SECONDS, TimeUnit.SECONDS), "the daemon did not stop on SIGTERM");
            } finally {
                daemon.destroyForcibly();
            }
        }
    }

    /**
     * Starts {@code samepage daemon --config config} (after {@code before}, such as nohup) with systemd's
     * {@code NOTIFY_SOCKET} set, standard input from /dev/null, its output in daemon.out and daemon.err.
     */
    private Process startNotifying(Path config, String notifySocket, String... before) throws IOException {
        List<String> command = new ArrayList<>(List.of(before));
        command.addAll(List.of(Samepage.root().resolve("samepage").toString(), "daemon", "--config",
                config.toString()));
        ProcessBuilder builder = new ProcessBuilder(command)
                .directory(Samepage.root().toFile())
                .redirectInput(ProcessBuilder.Redirect.from(new java.io.File("/dev/null")))
                .redirectOutput(dir.resolve("daemon.out").toFile())
                .redirectError(dir.resolve("daemon.err").toFile());
        builder.environment().put("NOTIFY_SOCKET", notifySocket);
        return builder.start();
    }

    /** Sends SIGHUP; systemd hears RELOADING=1 then READY=1, the daemon runs on and says {@code told}. */
    private void assertReloaded(Process daemon, UnixDatagram systemd, String told) throws Exception {
        String before = stderr();
        Process kill = new ProcessBuilder("kill", "-HUP", Long.toString(daemon.pid())).inheritIO().start();
        assertEquals(0, kill.waitFor());
        String reloading = systemd.receive(Duration.ofSeconds(WAIT_SECONDS));
        assertTrue(reloading != null && reloading.matches("RELOADING=1\nMONOTONIC_USEC=\\d+"), reloading);
        assertEquals("READY=1\nSTATUS=merging 2 guests", systemd.receive(Duration.ofSeconds(WAIT_SECONDS)));
        assertTrue(daemon.isAlive(), "SIGHUP stopped the daemon: " + stderr());
        assertEquals(before + told, stderr());
    }

    @Test
    void aBadConfigLineIsRefusedBeforeAnythingStarts() throws Exception {
        Path config = Files.writeString(dir.resolve("bad.conf"), "source=x.img\npool_mib=64\npool_mib=128\n");
        Samepage.Run run = Samepage.run("daemon", "--config", config.toString());
        assertEquals(2, run.exitCode());
        String[] lines = run.stderr().split("\n");
        assertEquals("samepage daemon: " + config + ":3: pool_mib: given twice (first on line 2)",
                lines[lines.length - 1], run.stderr());
        assertEquals("", run.stdout());
    }

    @Test
    void statRefusesAMissingCountersFile() throws Exception {
        Samepage.Run run = Samepage.run("stat", "--counters-file", dir.resolve("absent").toString());
        assertEquals(2, run.exitCode());
        assertTrue(run.stderr().startsWith("samepage stat: " + dir.resolve("absent") + ": no counters file"),
                run.stderr());
    }

    /** Polls stat until both guests' shared pages are merged, for at most {@link #WAIT_SECONDS}. */
    private JsonNode awaitSharing(Path counters, Process daemon) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(WAIT_SECONDS);
        String last = "no counters file yet";
        while (System.nanoTime() - deadline < 0) {
            if (!daemon.isAlive()) {
                throw new AssertionError("the daemon exited " + daemon.exitValue() + ": " + stderr());
            }
            if (Files.exists(counters)) {
                Samepage.Run run = Samepage.run("stat", "--json", "--counters-file", counters.toString());
                last = run.stdout() + run.stderr();
                if (run.exitCode() == 0) {
                    JsonNode stat = new com.fasterxml.jackson.databind.ObjectMapper().readTree(run.stdout());
                    if (stat.get("pages_sharing").asLong() == SHARED) {
                        return stat;
                    }
                }
            }
            Thread.sleep(200);
        }
        throw new AssertionError("pages_sharing did not reach " + SHARED + " in " + WAIT_SECONDS + " s; last stat: "
                + last + "; daemon stderr: " + stderr());
    }

    private static String get(int port) throws Exception {
        try (HttpClient client = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(10)).build()) {
            HttpResponse<String> response = client.send(HttpRequest.newBuilder(
                    URI.create("http://127.0.0.1:" + port + "/metrics")).timeout(Duration.ofSeconds(30)).GET().build(),
                    HttpResponse.BodyHandlers.ofString(StandardCharsets.UTF_8));
            assertEquals(200, response.statusCode());
            assertTrue(response.headers().firstValue("Content-Type").orElse("").startsWith("text/plain; version=0.0.4"));
            return response.body();
        }
    }

    private static long metric(String body, String name) {
        Matcher m = Pattern.compile("(?m)^" + Pattern.quote(name) + " (-?\\d+)\\.0$").matcher(body);
        if (!m.find()) {
            throw new AssertionError(name + " is not in /metrics");
        }
        return Long.parseLong(m.group(1));
    }

    private String stderr() {
        try {
            return Files.readString(dir.resolve("daemon.err"));
        } catch (IOException e) {
            return "(unreadable: " + e + ")";
        }
    }

}
