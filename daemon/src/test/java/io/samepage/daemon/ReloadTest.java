package io.samepage.daemon;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@link Daemon#reload}: a new config's knobs and estimate interval apply to the running daemon, a knob
 * left out goes back to its default, and a change that needs a restart, or a knob the engine refuses,
 * changes nothing at all.
 */
class ReloadTest {

    private static final int PAGE = 4096;

    @TempDir
    Path dir;

    private List<String> base;

    @BeforeEach
    void writeDumps() throws IOException {
        SplittableRandom random = new SplittableRandom(5);
        byte[] page = new byte[PAGE];
        random.nextBytes(page);
        byte[] dump = new byte[8 * PAGE];
        for (int p = 0; p < 8; p++) {
            System.arraycopy(page, 0, dump, p * PAGE, PAGE);
        }
        Files.write(dir.resolve("vm0.img"), dump);
        base = List.of("source=" + dir.resolve("vm0.img"), "counters_file=" + dir.resolve("counters"));
    }

    private DaemonConfig config(String... more) {
        List<String> lines = new ArrayList<>(base);
        lines.addAll(List.of(more));
        return DaemonConfig.parse("samepage.conf", lines);
    }

    private Daemon launch(DaemonConfig config) {
        return Daemon.launch(config.applyTo(new Daemon.Context().noticeHandler(_ -> { })));
    }

    @Test
    void knobsAndTheEstimateIntervalChangeLiveAndAKnobLeftOutReturnsToItsDefault() {
        try (Daemon daemon = launch(config("pages_to_scan=1000", "sleep_millisecs=1", "smart_scan=0"))) {
            assertEquals("pages_to_scan 1000 -> 500, sleep_millisecs 1 -> 5, smart_scan 0 -> 1, "
                    + "estimate_interval_seconds 60 -> 5 (no live source to re-read)",
                    daemon.reload(config("pages_to_scan=500", "sleep_millisecs=5", "estimate_interval_seconds=5")));
            assertEquals(500, daemon.engine().knobs().pagesToScan());
            assertEquals(5, daemon.engine().knobs().sleepMillis());
            assertEquals(true, daemon.engine().knobs().smartScan());
            assertEquals("nothing changed",
                    daemon.reload(config("pages_to_scan=500", "sleep_millisecs=5", "estimate_interval_seconds=5")));
        }
    }

    /**
     * {@code run=2} on the default pool (the sources' bytes and a zero frame) unmerges: 8 pages merged onto
     * one frame need 7 frames, which are free. It asked for 8 and refused on every default pool, with a
     * scanner line that began with a Java class name.
     */
    @Test
    void runTwoUnmergesOnTheDefaultPool() throws InterruptedException {
        List<String> notices = java.util.Collections.synchronizedList(new ArrayList<>());
        DaemonConfig merging = config("pages_to_scan=1000", "sleep_millisecs=1");
        try (Daemon daemon = Daemon.launch(merging.applyTo(new Daemon.Context().noticeHandler(notices::add)))) {
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
            while (daemon.engine().counters().pagesSharing() < 7 && System.nanoTime() - deadline < 0) {
                Thread.sleep(10);
            }
            assertEquals(7, daemon.engine().counters().pagesSharing(), "merged first");
            daemon.reload(config("pages_to_scan=1000", "sleep_millisecs=1", "run=2"));
            while (daemon.engine().knobs().run() == 2 && System.nanoTime() - deadline < 0) {
                Thread.sleep(10);
            }
            assertEquals(List.of(), notices.stream().filter(n -> n.contains("exhausted")).toList(), "refused");
            assertEquals(0, daemon.engine().counters().pagesShared(), "unmerged: " + daemon.engine().counters());
            assertEquals(0, daemon.engine().counters().pagesSharing());
        }
    }

    @Test
    void aChangeThatNeedsARestartIsRefusedAndChangesNothing() throws IOException {
        Files.copy(dir.resolve("vm0.img"), dir.resolve("vm1.img"));
        try (Daemon daemon = launch(config("pages_to_scan=1000"))) {
            DaemonException refused = assertThrows(DaemonException.class, () -> daemon.reload(config(
                    "pages_to_scan=7", "source=" + dir.resolve("vm1.img"), "metrics_port=9",
                    "metrics_address=127.0.0.2")));
            assertEquals(DaemonException.Kind.CONFIG, refused.kind());
            assertEquals("source, metrics_port, metrics_address changed: they take effect only with a restart",
                    refused.getMessage());
            assertEquals(1000, daemon.engine().knobs().pagesToScan());
        }
    }

    @Test
    void aChangeOfTheKsmPolicyIsRefusedAsRestartOnly() {
        try (Daemon daemon = launch(config("ksm_rate=ksmtuned"))) {
            DaemonException refused = assertThrows(DaemonException.class,
                    () -> daemon.reload(config("ksm_rate=ksmtuned", "ksm_policy=dry_run")));
            assertEquals("ksm_* (the KSM policy) changed: it takes effect only with a restart", refused.getMessage());
            assertEquals("nothing changed", daemon.reload(config("ksm_rate=ksmtuned")));
        }
    }

    @Test
    void aKnobTheEngineRefusesNowRollsBackTheWholeReload() throws InterruptedException {
        try (Daemon daemon = launch(config("pages_to_scan=1000", "sleep_millisecs=1"))) {
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
            while (daemon.engine().counters().pagesShared() == 0 && System.nanoTime() - deadline < 0) {
                Thread.sleep(10);
            }
            DaemonException refused = assertThrows(DaemonException.class,
                    () -> daemon.reload(config("pages_to_scan=1000", "sleep_millisecs=9", "max_page_sharing=3")));
            assertEquals(DaemonException.Kind.CONFIG, refused.kind());
            assertEquals("max_page_sharing cannot change from 256 to 3 while frames are shared (pages_shared 1); "
                    + "unmerge first (run=2), then set it", refused.getMessage());
            assertEquals(1, daemon.engine().knobs().sleepMillis(), "the knob set before the refusal is restored");
            assertEquals(256, daemon.engine().knobs().maxPageSharing());
        }
    }
}
