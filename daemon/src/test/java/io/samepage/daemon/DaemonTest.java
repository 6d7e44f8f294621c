package io.samepage.daemon;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;
import java.util.function.Predicate;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The daemon as a library: a launched daemon merges its sources and publishes what it does in the
 * counters file, close stops everything and marks the file closed, and a launch that fails part way
 * leaves nothing running and nothing half-written.
 */
class DaemonTest {

    private static final int PAGE = 4096;
    private static final int SHARED = 16;
    private static final int UNIQUE = 16;
    private static final long WAIT_SECONDS = 60;
    /** The daemon's threads, and the JDK HTTP server's dispatcher, which serves its metrics. */
    private static final List<String> DAEMON_THREADS = List.of("samepage-scanner", "samepage-daemon-publisher",
            "samepage-daemon-refresher", "HTTP-Dispatcher");

    @TempDir
    Path dir;

    private Path counters;

    @BeforeEach
    void writeDumps() throws IOException {
        SplittableRandom random = new SplittableRandom(11);
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
        counters = Files.createDirectories(dir.resolve("run")).resolve("counters");
    }

    @AfterEach
    void noDaemonThreadOutlivesItsTest() {
        assertEquals(List.of(), daemonThreads());
    }

    private Daemon.Context context() {
        Daemon.Context context = new Daemon.Context()
                .sources(List.of(new Source.File(dir.resolve("vm0.img").toString()),
                        new Source.File(dir.resolve("vm1.img").toString())))
                .countersFile(counters)
                .publishIntervalMillis(20);
        context.knobs().pagesToScan(1000).sleepMillis(1);
        return context;
    }

    private static List<String> daemonThreads() {
        return Thread.getAllStackTraces().keySet().stream()
                .filter(Thread::isAlive)
                .map(Thread::getName)
                .filter(DAEMON_THREADS::contains)
                .toList();
    }

    /** This process's own sockets that listen on {@code port}, from {@code /proc}: another process's do not count. */
    private static List<DaemonLeftovers.OwnSocket> listeningOn(int port) throws IOException {
        return DaemonLeftovers.socketsOn(port).stream().filter(DaemonLeftovers.OwnSocket::listening).toList();
    }

    /** Reads the counters file until {@code done} holds, for at most {@link #WAIT_SECONDS}. */
    private CountersFileReader.Snapshot await(Predicate<CountersFileReader.Snapshot> done) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(WAIT_SECONDS);
        CountersFileReader.Snapshot last = null;
        while (System.nanoTime() - deadline < 0) {
            last = CountersFileReader.read(counters);
            if (done.test(last)) {
                return last;
            }
            Thread.sleep(20);
        }
        throw new AssertionError("the counters did not get there in " + WAIT_SECONDS + " s; last: "
                + (last == null ? "none" : Arrays.toString(last.values())));
    }

    @Test
    void aContextConcludesOnceAndIsFixedThen() {
        Daemon.Context context = context();
        context.conclude();
        assertThrows(IllegalStateException.class, context::conclude);
        assertThrows(IllegalStateException.class, () -> context.metricsPort(9464));
        assertEquals(counters, context.countersFile());
    }

    @Test
    void aContextWithoutACountersFileGetsTheDefaultWhenItConcludes() {
        Daemon.Context context = context().countersFile(null);
        assertEquals(CountersFile.defaultPath(), context.conclude().countersFile());
    }

    @Test
    void concludeNamesTheSettingThatIsWrong() {
        assertEquals("sources: give at least one (a file, a pid or qemu)", refusal(new Daemon.Context()));
        assertEquals("sources: pid:7 given twice (a guest's name must be unique)",
                refusal(context().sources(List.of(new Source.Pid(7), new Source.Qemu(), new Source.Pid(7)))));
        assertEquals("metricsPort must be a port, 1 to 65535, METRICS_PORT_ANY or 0 for none, not 65536",
                refusal(context().metricsPort(65536)));
        assertEquals("metricsPort must be a port, 1 to 65535, METRICS_PORT_ANY or 0 for none, not -2",
                refusal(context().metricsPort(-2)));
        assertEquals("poolMib must be 1 to " + Daemon.Context.MAX_POOL_MIB
                + ", or 0 to size the pool from the sources, not -1", refusal(context().poolMib(-1)));
        assertEquals("estimateIntervalSeconds must be at least 1, not 0", refusal(context().estimateIntervalSeconds(0)));
        assertEquals("publishIntervalMillis must be at least 1, not 0", refusal(context().publishIntervalMillis(0)));
    }

    private static String refusal(Daemon.Context context) {
        DaemonException refused = assertThrows(DaemonException.class, context::conclude);
        assertEquals(DaemonException.Kind.CONFIG, refused.kind());
        return refused.getMessage();
    }

    @Test
    void aContextLaunchesOneDaemonOnly() {
        Daemon.Context context = context();
        Daemon.launch(context).close();
        assertThrows(IllegalStateException.class, () -> Daemon.launch(context));
    }

    @Test
    void whatTheDaemonMergesTheReaderReadsAndCloseMarksTheFileClosed() throws Exception {
        Daemon daemon = Daemon.launch(context());
        CountersFileReader.Snapshot merged;
        try {
            assertEquals(counters, daemon.countersFile());
            assertEquals(0, daemon.metricsPort());
            assertEquals(2, daemonThreads().size(), "no refresher without live sources: " + daemonThreads());
            merged = await(s -> s.value("pages_sharing") == SHARED);
            assertTrue(merged.running());
            assertEquals(ProcessHandle.current().pid(), merged.pid());
            assertEquals(SHARED, merged.value("pages_shared"));
            assertEquals(2, merged.value("guests"));
            assertEquals(2L * (SHARED + UNIQUE), merged.value("pages_total"));
            assertEquals(daemon.engine().counters().pagesTotal(), merged.value("pages_total"));
            long scans = merged.value("full_scans");
            assertTrue(await(s -> s.value("full_scans") > scans).running(), "the counters keep moving");
        } finally {
            daemon.close();
        }
        assertEquals(List.of(), daemonThreads());
        CountersFileReader.Snapshot closed = CountersFileReader.read(counters);
        assertFalse(closed.running());
        assertEquals(SHARED, closed.value("pages_sharing"));
        assertEquals(merged.startMillis(), closed.startMillis());
        byte[] afterClose = Files.readAllBytes(counters);
        daemon.close();
        assertTrue(Arrays.equals(afterClose, Files.readAllBytes(counters)), "a second close changed the file");
    }

    @Test
    void closePublishesTheCountersOnceMore() throws Exception {
        try (Daemon daemon = Daemon.launch(context().publishIntervalMillis(TimeUnit.HOURS.toMillis(1)))) {
            assertEquals(0, CountersFileReader.read(counters).value("pages_sharing"), "published at launch");
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(WAIT_SECONDS);
            while (daemon.engine().counters().pagesSharing() != SHARED && System.nanoTime() - deadline < 0) {
                Thread.sleep(20);
            }
            assertEquals(0, CountersFileReader.read(counters).value("pages_sharing"), "not yet published again");
        }
        assertEquals(SHARED, CountersFileReader.read(counters).value("pages_sharing"));
    }

    /**
     * A counters file deleted while the daemon runs (a temporary-files cleaner, an operator) is written
     * anew within a publish interval, with one notice; it used to stay gone until the daemon restarted.
     */
    @Test
    void aCountersFileDeletedWhileTheDaemonRunsIsWrittenAnewAndToldOnce() throws Exception {
        List<String> notices = new java.util.concurrent.CopyOnWriteArrayList<>();
        try (Daemon _ = Daemon.launch(context().noticeHandler(notices::add))) {
            await(s -> s.value("pages_sharing") == SHARED);
            Files.delete(counters);
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(WAIT_SECONDS);
            while (!Files.exists(counters) && System.nanoTime() - deadline < 0) {
                Thread.sleep(5);
            }
            CountersFileReader.Snapshot back = await(s -> s.value("pages_sharing") == SHARED);
            assertTrue(back.running());
            assertEquals(ProcessHandle.current().pid(), back.pid());
            // The publisher tells it after it linked the file, so the file alone does not say it was told.
            while (notices.isEmpty() && System.nanoTime() - deadline < 0) {
                Thread.sleep(5);
            }
            // Two heartbeats more: the update that wrote the first of them has looked at the path again,
            // and would have told a second time.
            for (int beat = 0; beat < 2; beat++) {
                long seen = CountersFileReader.read(counters).heartbeatMillis();
                await(s -> s.heartbeatMillis() != seen);
            }
            assertEquals(List.of("counters file " + counters + ": deleted while the daemon ran; written anew"),
                    notices);
        }
        assertFalse(CountersFileReader.read(counters).running());
        assertEquals(List.of(), temporaryFiles());
    }

    @Test
    void metricsAreServedWhileTheDaemonRunsAndNoLongerOnceClosed() throws Exception {
        int port;
        DaemonLeftovers.OwnSocket listener;
        try (Daemon daemon = Daemon.launch(context().metricsPort(Daemon.Context.METRICS_PORT_ANY));
                HttpClient client = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(10)).build()) {
            port = daemon.metricsPort();
            assertEquals("http://127.0.0.1:" + port + "/metrics", daemon.metricsUrl());
            List<DaemonLeftovers.OwnSocket> listening = listeningOn(port);
            assertEquals(1, listening.size(), "the daemon's one listening socket: " + listening);
            listener = listening.getFirst();
            HttpResponse<String> response = client.send(HttpRequest.newBuilder(
                    URI.create("http://127.0.0.1:" + port + "/metrics")).GET().build(),
                    HttpResponse.BodyHandlers.ofString());
            assertEquals(200, response.statusCode());
            assertTrue(response.body().contains("\nsamepage_guests 2.0\n"), response.body());
        }
        // Not by binding the port: another process may take it as soon as the daemon lets it go.
        assertFalse(DaemonLeftovers.open(listener.inode()), "the daemon's listening socket is closed: " + listener);
        assertEquals(List.of(), listeningOn(port), "no socket of this process listens on the port");
    }

    @Test
    void metricsListenOnTheConfiguredAddress() throws Exception {
        InetAddress other = InetAddress.ofLiteral("127.0.0.2");
        try (Daemon daemon = Daemon.launch(context().metricsAddress(other).metricsPort(Daemon.Context.METRICS_PORT_ANY));
                HttpClient client = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(10)).build()) {
            assertEquals("http://127.0.0.2:" + daemon.metricsPort() + "/metrics", daemon.metricsUrl());
            HttpResponse<String> response = client.send(HttpRequest.newBuilder(URI.create(daemon.metricsUrl()))
                    .GET().build(), HttpResponse.BodyHandlers.ofString());
            assertEquals(200, response.statusCode());
            // Its own sockets, not a bind of 127.0.0.1: another process may hold that address's port.
            assertEquals(List.of(other), listeningOn(daemon.metricsPort()).stream()
                    .map(DaemonLeftovers.OwnSocket::address).toList(), "it listens on 127.0.0.2 alone");
        }
    }

    /**
     * {@code metrics_port=any} binds a free port at launch, and the daemon says which: a caller (a test, a
     * supervisor) need not pick a port that another process may take before the daemon binds it.
     */
    @Test
    void metricsPortAnyBindsAFreePortAndTheDaemonSaysWhich() throws Exception {
        Daemon.Context context = DaemonConfig.parse("samepage.conf", List.of("source=" + dir.resolve("vm0.img"),
                "counters_file=" + counters, "metrics_port=any")).applyTo(new Daemon.Context());
        try (Daemon daemon = Daemon.launch(context);
                HttpClient client = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(10)).build()) {
            int port = daemon.metricsPort();
            assertTrue(port > 0 && port <= 65535, "the bound port: " + port);
            assertEquals("http://127.0.0.1:" + port + "/metrics", daemon.metricsUrl());
            HttpResponse<String> response = client.send(HttpRequest.newBuilder(URI.create(daemon.metricsUrl()))
                    .GET().build(), HttpResponse.BodyHandlers.ofString());
            assertEquals(200, response.statusCode());
            assertTrue(response.body().contains("\nsamepage_guests 1.0\n"), response.body());
        }
    }

    @Test
    void aPortInUseLeavesNothingRunningAndTheOldCountersFileAsItWas() throws Exception {
        try (CountersFile old = CountersFile.create(counters, 1, 1)) {
            old.update(new long[] {5, 6, 7}, 2);
        }
        byte[] before = Files.readAllBytes(counters);
        try (ServerSocket taken = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            DaemonException refused = assertThrows(DaemonException.class,
                    () -> Daemon.launch(context().metricsPort(taken.getLocalPort())));
            assertEquals(DaemonException.Kind.METRICS_PORT, refused.kind());
            assertTrue(refused.getMessage().startsWith("metrics_port " + taken.getLocalPort() + ": cannot listen on"),
                    refused.getMessage());
        }
        assertEquals(List.of(), daemonThreads());
        assertTrue(Arrays.equals(before, Files.readAllBytes(counters)), "the old counters file changed");
        assertEquals(List.of(), temporaryFiles());
    }

    @Test
    void aCountersFileThatCannotBeCreatedLeavesNothingRunning() throws Exception {
        Files.delete(dir.resolve("run"));
        Path notADirectory = Files.createFile(dir.resolve("run"));
        DaemonException refused = assertThrows(DaemonException.class,
                () -> Daemon.launch(context().metricsPort(Daemon.Context.METRICS_PORT_ANY)));
        assertEquals(DaemonException.Kind.COUNTERS_FILE, refused.kind());
        assertEquals("counters file " + counters + ": cannot be created: " + notADirectory + ": not a directory",
                refused.getMessage());
        assertEquals(List.of(), daemonThreads(), "the metrics server and the daemon's threads were stopped");
        assertEquals(0, Files.size(notADirectory));
    }

    @Test
    void aMissingSourceIsRefusedBeforeAnythingStarts() {
        Path missing = dir.resolve("gone.img");
        DaemonException refused = assertThrows(DaemonException.class, () -> Daemon.launch(context()
                .sources(List.of(new Source.File(dir.resolve("vm0.img").toString()), new Source.File(missing.toString())))));
        assertEquals(DaemonException.Kind.SOURCE, refused.kind());
        assertEquals(missing + ": no such file", refused.getMessage());
        assertFalse(Files.exists(counters));
    }

    @Test
    void sourcesThatDoNotFitThePoolAreAConfigTheDaemonCannotRunAndLeaveNothingRunning() throws IOException {
        byte[] distinct = new byte[2 << 20];
        new SplittableRandom(3).nextBytes(distinct);
        Path big = Files.write(dir.resolve("big.img"), distinct);
        DaemonException refused = assertThrows(DaemonException.class,
                () -> Daemon.launch(context().sources(List.of(new Source.File(big.toString()))).poolMib(1)));
        assertEquals(DaemonException.Kind.CONFIG, refused.kind());
        assertTrue(refused.getMessage().startsWith("pool_mib=1 is too small for the sources ("), refused.getMessage());
        assertTrue(refused.getMessage().endsWith("); raise pool_mib"), refused.getMessage());
        assertFalse(Files.exists(counters));
        assertEquals(List.of(), temporaryFiles());
    }

    @Test
    void aFileThatIsNotACountersFileIsRefusedAndNeverWritten() throws Exception {
        for (Path foreign : List.of(dir.resolve("vm0.img"), Files.writeString(dir.resolve("samepage.conf"),
                "source=" + dir.resolve("vm0.img") + "\n"), Files.write(dir.resolve("short"), new byte[3]))) {
            byte[] before = Files.readAllBytes(foreign);
            DaemonException refused = assertThrows(DaemonException.class,
                    () -> Daemon.launch(context().countersFile(foreign)));
            assertEquals(DaemonException.Kind.COUNTERS_FILE, refused.kind());
            assertEquals("counters file " + foreign + ": exists and is not a samepage counters file; not replacing it "
                    + "(remove it, or give another counters_file)", refused.getMessage());
            assertTrue(Arrays.equals(before, Files.readAllBytes(foreign)), foreign + " changed");
        }
        assertEquals(List.of(), daemonThreads());
    }

    @Test
    void aSecondDaemonOnTheSameCountersFileIsRefusedWhileTheFirstRuns() throws Exception {
        try (Daemon first = Daemon.launch(context())) {
            await(s -> s.value("guests") == 2);
            DaemonException refused = assertThrows(DaemonException.class, () -> Daemon.launch(context()));
            assertEquals(DaemonException.Kind.COUNTERS_FILE, refused.kind());
            assertTrue(refused.getMessage().startsWith("counters file " + counters + ": in use: the samepage daemon "
                    + "with pid " + ProcessHandle.current().pid() + " holds its lock "), refused.getMessage());
            DaemonException again = assertThrows(DaemonException.class, () -> Daemon.launch(context()));
            assertEquals(refused.getMessage(), again.getMessage(), "the lock outlives a refused claim");
            assertTrue(CountersFileReader.read(counters).running(), "the first daemon's file is still running");
            assertEquals(2, first.engine().guests().size());
        }
        assertFalse(CountersFileReader.read(counters).running());
        Daemon.launch(context()).close();
    }

    @Test
    void aStaleCountersFileOfADaemonThatIsGoneIsReplaced() throws Exception {
        Process gone = new ProcessBuilder("true").start();
        gone.waitFor();
        try (CountersFile _ = CountersFile.create(counters, gone.pid(), System.currentTimeMillis())) {
            // its lock is released on close; the bytes say "running", as a killed daemon's would
        }
        byte[] running = Files.readAllBytes(counters);
        java.nio.ByteBuffer.wrap(running).order(java.nio.ByteOrder.nativeOrder())
                .putLong(24, CountersFile.STATE_RUNNING).putLong(32, System.currentTimeMillis());
        Files.write(counters, running);
        try (Daemon _ = Daemon.launch(context())) {
            assertEquals(ProcessHandle.current().pid(), CountersFileReader.read(counters).pid());
        }
    }

    @Test
    void aCountersFileInADirectoryThatDoesNotExistIsRefused() {
        Path missing = dir.resolve("no-such-dir");
        DaemonException refused = assertThrows(DaemonException.class,
                () -> Daemon.launch(context().countersFile(missing.resolve("counters"))));
        assertEquals(DaemonException.Kind.COUNTERS_FILE, refused.kind());
        assertEquals("counters file " + missing.resolve("counters") + ": cannot be created: directory " + missing
                + " does not exist (create it, or give another counters_file)", refused.getMessage());
        assertFalse(Files.exists(missing));
        assertEquals(List.of(), daemonThreads());
    }

    @Test
    void aLaunchThatFailsAfterClaimingTheCountersFileLeavesTheOldOneByteForByte() throws Exception {
        try (CountersFile old = CountersFile.create(counters, 1, 1)) {
            old.update(new long[] {5, 6, 7}, 2);
        }
        byte[] before = Files.readAllBytes(counters);
        assertThrows(DaemonException.class, () -> Daemon.launch(context().sources(List.of(
                new Source.File(dir.resolve("vm0.img").toString()), new Source.File(dir.resolve("gone.img").toString())))));
        assertTrue(Arrays.equals(before, Files.readAllBytes(counters)), "the old counters file changed");
        assertEquals(List.of(), temporaryFiles());
    }

    @Test
    void aLiveSourceThatExitsIsToldOnceAndDropped() throws Exception {
        Process child = new ProcessBuilder("sleep", "600").start();
        List<String> notices = new java.util.concurrent.CopyOnWriteArrayList<>();
        try (Daemon daemon = Daemon.launch(context().estimateIntervalSeconds(1).noticeHandler(notices::add)
                .sources(List.of(new Source.File(dir.resolve("vm0.img").toString()), new Source.Pid((int) child.pid()))))) {
            assertEquals(1, daemon.engine().guests().size(), "the file: a live source is estimated, not loaded");
            child.destroyForcibly();
            child.waitFor();
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(WAIT_SECONDS);
            while (notices.isEmpty() && System.nanoTime() - deadline < 0) {
                Thread.sleep(50);
            }
            Thread.sleep(3_500);
            assertEquals(List.of("pid:" + child.pid() + ": the process has exited; dropped from the sources "
                    + "(a later process with its pid is another process)"), notices);
            assertEquals(1, daemon.engine().guests().size(), "only the file's guest is left");
        } finally {
            child.destroyForcibly();
        }
    }

    /**
     * The default error handler writes a Samepage error as its thread and its message, which names the
     * culprit; it wrote {@code io.samepage.core.DedupException: ...}. An error of any other type keeps
     * its type, which may be all it says.
     */
    @Test
    void theDefaultErrorLineIsTheThreadAndTheMessage() {
        List<String> notices = new ArrayList<>();
        Daemon.Context context = context().noticeHandler(notices::add).conclude();
        context.errorHandler().onError(new io.samepage.core.DedupException(io.samepage.core.DedupException.Kind.POOL_EXHAUSTED,
                "host frame pool exhausted: unmerging every merged page needs 8 free frames, 7 are free"));
        context.errorHandler().onError(new NullPointerException());
        String thread = Thread.currentThread().getName();
        assertEquals(List.of(thread + ": host frame pool exhausted: unmerging every merged page needs 8 free frames, 7 are free",
                thread + ": java.lang.NullPointerException"), notices);
    }

    /** The counters file's temporary files in its directory: none once a launch is over. */
    private List<String> temporaryFiles() throws IOException {
        try (var files = Files.list(counters.getParent())) {
            return files.map(file -> file.getFileName().toString()).filter(name -> name.endsWith(".new")).toList();
        }
    }
}
