package io.samepage.daemon;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.samepage.testing.ThreadFaultingHasher;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@link DaemonService#reload}: one line for what a reload of the config file changed or why it was
 * refused, config errors in their {@code FILE:LINE} form, and nothing once the daemon stops;
 * {@link DaemonService#stop} ends a launch in progress. (What it tells systemd is proved end to end,
 * through the launcher, with a socket standing in for systemd.)
 */
class DaemonServiceTest {

    @TempDir
    Path dir;

    @Test
    void eachReloadIsToldOnOneLineAndARefusedOneChangesNothing() throws IOException {
        Files.write(dir.resolve("vm0.img"), new byte[4 * 4096]);
        Path config = dir.resolve("samepage.conf");
        String base = "source=" + dir.resolve("vm0.img") + "\ncounters_file=" + dir.resolve("counters") + "\n";
        Files.writeString(config, base + "pages_to_scan=1000\n");
        List<String> notices = new ArrayList<>();
        try (Daemon daemon = Daemon.launch(DaemonConfig.read(config).applyTo(new Daemon.Context().noticeHandler(_ -> { })));
                DaemonService service = new DaemonService(config, notices::add)) {
            service.reload();
            service.ready(daemon);
            Files.writeString(config, base + "pages_to_scan=500\n");
            service.reload();
            Files.writeString(config, base + "pages_to_scan=five\n");
            service.reload();
            Files.writeString(config, base + "pages_to_scan=7\nmetrics_port=9\n");
            service.reload();
            assertEquals(500, daemon.engine().knobs().pagesToScan());
            service.stopping();
            service.reload();
        }
        assertEquals(List.of(
                "reload asked while the daemon is not running: ignored",
                "reloaded " + config + ": pages_to_scan 1000 -> 500",
                config + ":3: pages_to_scan must be a whole number, not 'five'; reload refused, running on with "
                        + "the old config",
                config + ": metrics_port changed: it takes effect only with a restart; reload refused, running on "
                        + "with the old config",
                "reload asked while the daemon is not running: ignored"), notices);
    }

    /**
     * A daemon thread that stops on an Error ends the service's wait and is thrown once the daemon closed
     * ({@code samepage daemon} then exits 1 with its line); before, the daemon ran on without its scanner.
     */
    @Test
    void aDaemonThreadThatStopsOnAnErrorWakesTheServiceWhichThrowsIt() throws Exception {
        byte[] pages = new byte[4 * 4096];
        new java.util.SplittableRandom(3).nextBytes(pages);
        Files.write(dir.resolve("vm1.img"), pages);
        Path config = dir.resolve("samepage.conf");
        Files.writeString(config, "source=" + dir.resolve("vm1.img") + "\ncounters_file=" + dir.resolve("counters")
                + "\nsleep_millisecs=1\nrun=1\n");
        ThreadFaultingHasher hasher = new ThreadFaultingHasher("samepage-scanner");
        java.util.concurrent.CountDownLatch woken = new java.util.concurrent.CountDownLatch(1);
        try (DaemonService service = new DaemonService(config, _ -> { })) {
            Daemon.Context context = DaemonConfig.read(config).applyTo(new Daemon.Context().noticeHandler(_ -> { }));
            context.engineContext().customHasher(hasher);
            service.endOnFatalError(context, woken::countDown);
            service.throwIfFailed();        // nothing has failed: returns
            try (Daemon daemon = service.launch(context)) {
                                    assertTrue(woken.await(50, TimeUnit.SECONDS), "not woken: " + daemon.engine().counters());
                assertEquals(1, daemon.engine().guests().size());
            }
            DaemonException thrown = org.junit.jupiter.api.Assertions.assertThrows(DaemonException.class,
                    service::throwIfFailed);
            assertEquals(DaemonException.Kind.FAILED, thrown.kind());
            assertTrue(thrown.getMessage().startsWith("samepage-scanner stopped on java.lang.InternalError: "),
                    thrown.getMessage());
        }
    }

    /**
     * A stop asked while the daemon loads a large source (8 GiB, sparse: seconds of reading) ends the
     * launch: it returns null at once, with one notice, and leaves no thread, no counters file and no
     * temporary file; the launching thread is not left interrupted. {@code samepage daemon} asks it on
     * SIGTERM; before, the signal waited for the whole launch.
     */
    @Test
    void aStopAskedWhileTheDaemonLaunchesEndsTheLaunchAndLeavesNothing() throws Exception {
        Path sparse = dir.resolve("sparse.img");
        try (RandomAccessFile file = new RandomAccessFile(sparse.toFile(), "rw")) {
            file.setLength(8L << 30);
        }
        Path run = Files.createDirectories(dir.resolve("run"));
        Daemon.Context context = new Daemon.Context().sources(List.of(new Source.File(sparse.toString())))
                .poolMib(64).countersFile(run.resolve("counters"));
        List<String> notices = new CopyOnWriteArrayList<>();
        DaemonService service = new DaemonService(dir.resolve("unused.conf"), notices::add);
        CompletableFuture<Boolean> interruptedAfter = new CompletableFuture<>();
        CompletableFuture<Daemon> launched = CompletableFuture.supplyAsync(() -> {
            Daemon daemon = service.launch(context.noticeHandler(notices::add));
            interruptedAfter.complete(Thread.currentThread().isInterrupted());
            return daemon;
        }, runnable -> new Thread(runnable, "launching").start());
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
        while (namesIn(run).stream().noneMatch(name -> name.endsWith(".new")) && !launched.isDone()
                && System.nanoTime() - deadline < 0) {
            Thread.sleep(5);
        }
        assertFalse(launched.isDone(), "the launch ended before it was stopped: " + notices);
        Thread.sleep(200);
        service.stop();
        assertNull(launched.get(10, TimeUnit.SECONDS), "the launch went on after the stop");
        assertFalse(interruptedAfter.get(), "the launching thread was left interrupted");
        assertEquals(List.of("stopped while starting; nothing is left running"), notices);
        assertEquals(List.of(".counters.lock"), namesIn(run));
        assertTrue(Thread.getAllStackTraces().keySet().stream().noneMatch(t -> t.isAlive()
                && t.getName().startsWith("samepage-")), "a daemon thread is left");
        Daemon.Context again = new Daemon.Context().sources(context.sources()).countersFile(run.resolve("counters"));
        assertNull(service.launch(again), "a launch after a stop starts nothing");
        assertEquals(List.of(".counters.lock"), namesIn(run));
        assertEquals(2, notices.size(), "and says so: " + notices);
    }

    /**
     * A launch that failed for its own reason in the instant a stop interrupted it keeps that reason
     * beside the stop's line (a counters file that says where a file it moved now is, say): the stop's
     * line alone hid it (a review's finding). A failure the interrupt caused is not repeated.
     */
    @Test
    void aLaunchsOwnFailureIsToldBesideTheStopAndOneTheStopCausedIsNot() {
        DaemonException own = new DaemonException(DaemonException.Kind.COUNTERS_FILE, "counters file /run/c: could "
                + "not be put back: it is now /run/.c.7.new");
        assertEquals(own.getMessage(), DaemonService.ownFailure(
                new DaemonException(DaemonException.Kind.FAILED, DaemonService.LAUNCH_INTERRUPTED, own)));
        assertEquals("java.lang.OutOfMemoryError: Java heap space", DaemonService.ownFailure(
                new DaemonException(DaemonException.Kind.FAILED, DaemonService.LAUNCH_INTERRUPTED,
                        new OutOfMemoryError("Java heap space"))));
        DaemonException interruptedRead = new DaemonException(DaemonException.Kind.SOURCE, "source /img: cannot be "
                + "read", new java.nio.channels.ClosedByInterruptException());
        assertEquals(null, DaemonService.ownFailure(
                new DaemonException(DaemonException.Kind.FAILED, DaemonService.LAUNCH_INTERRUPTED, interruptedRead)));
        assertEquals(null, DaemonService.ownFailure(new DaemonException(DaemonException.Kind.FAILED,
                DaemonService.LAUNCH_INTERRUPTED, new DaemonException(DaemonException.Kind.SOURCE,
                        "/img: cannot be read: input/output error"))), "what an interrupted read looks like here");
    }

    private static List<String> namesIn(Path directory) throws IOException {
        try (Stream<Path> files = Files.list(directory)) {
            return files.map(file -> file.getFileName().toString()).sorted().toList();
        }
    }
}
