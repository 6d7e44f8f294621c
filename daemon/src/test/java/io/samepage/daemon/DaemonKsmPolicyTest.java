package io.samepage.daemon;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.samepage.host.KernelKsm;
import io.samepage.host.KsmPolicyLoop;
import io.samepage.testing.KsmSysfs;
import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.function.BooleanSupplier;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A daemon with {@code ksm_policy} on or dry_run drives a fake {@code /sys/kernel/mm/ksm} (a temporary
 * directory, never the real one) through host-mode's policy loop, with a faked estimate and ksmd CPU clock.
 */
class DaemonKsmPolicyTest {

    @TempDir
    Path dir;

    private Path ksm;
    private Path proc;
    private final List<String> notices = new CopyOnWriteArrayList<>();

    @BeforeEach
    void writeDumpAndFakeKsm() throws IOException {
        byte[] dump = new byte[8 * 4096];
        new SplittableRandom(7).nextBytes(dump);
        Files.write(dir.resolve("vm0.img"), dump);
        ksm = KsmSysfs.write(dir.resolve("ksm"), "pages_sharing", "1000");
        proc = FakeKsmPolicy.proc(dir);
    }

    private KsmPolicyLoop.Context fakeLoop() {
        return FakeKsmPolicy.loop(ksm, proc);
    }

    /** Launches a daemon over the fake KSM with {@code policy} lines, serving metrics on a free port if {@code metrics}. */
    private Daemon launch(boolean metrics, String... policy) {
        List<String> lines = new ArrayList<>(List.of("source=" + dir.resolve("vm0.img"),
                "counters_file=" + dir.resolve("counters"), "metrics_port=" + (metrics ? "any" : "0"), "ksm_rate=ksmtuned"));
        lines.addAll(List.of(policy));
        return Daemon.launch(DaemonConfig.parse("samepage.conf", lines).applyTo(new Daemon.Context()
                .noticeHandler(notices::add).ksmPolicyLoop(fakeLoop())));
    }

    /** Every file's value as KSM shows it (a written file lacks sysfs' newline). */
    private Map<String, String> snapshot() throws IOException {
        Map<String, String> files = new LinkedHashMap<>();
        try (var listing = Files.list(ksm)) {
            for (Path file : listing.sorted().toList()) {
                files.put(file.getFileName().toString(), Files.readString(file).strip());
            }
        }
        return files;
    }

    private static void await(BooleanSupplier condition, String what) throws InterruptedException {
        long deadline = System.nanoTime() + 20_000_000_000L;
        while (!condition.getAsBoolean()) {
            if (System.nanoTime() > deadline) {
                throw new AssertionError("timed out waiting until " + what);
            }
            Thread.sleep(20);
        }
    }

    private boolean stepped() {
        return notices.stream().anyMatch(n -> n.startsWith("ksm policy: saving: "));
    }

    private static PrometheusText scrape(int port) throws IOException, InterruptedException {
        try (HttpClient client = HttpClient.newHttpClient()) {
            return PrometheusText.parse(client.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port
                    + "/metrics")).GET().build(), HttpResponse.BodyHandlers.ofString()).body());
        }
    }

    @Test
    void policyOnTurnsKsmOnWhenTheEstimatePaysReportsPredictedAndAchievedAndCloseRestoresEveryKnob()
            throws Exception {
        Map<String, String> before = snapshot();
        try (Daemon daemon = launch(true, "ksm_policy=on")) {
            await(() -> Files.exists(ksm.resolve("run")) && readRun().equals("1"), "run=1");
            await(this::stepped, "the step is told");
            PrometheusText metrics = scrape(daemon.metricsPort());
            assertEquals(FakeKsmPolicy.RICH.estimatedSavingBytes(), metrics.value("samepage_ksm_predicted_saving_bytes", Map.of()));
            assertEquals(1000.0 * 4096, metrics.value("samepage_ksm_achieved_saving_bytes", Map.of()));
            assertEquals(0.0, metrics.value("samepage_ksmd_cpu_seconds_total", Map.of()));
            assertEquals(0.0, metrics.value("samepage_ksmd_cpu_seconds_per_gib_saved", Map.of()));
            assertEquals(0.0, metrics.value("samepage_ksm_policy_backoffs_total", Map.of()));
            assertEquals("counter", metrics.family("samepage_ksm_policy_backoffs_total").type());
        }
        assertEquals(before, snapshot(), "close restores every knob the loop changed");
        assertTrue(notices.stream().anyMatch(n -> n.startsWith("ksm policy: decision: merge")), notices.toString());
    }

    private String readRun() {
        try {
            return Files.readString(ksm.resolve("run")).strip();
        } catch (IOException e) {
            return "";
        }
    }

    @Test
    void aKnobThatCannotGoBackOnCloseIsNamedAndTheRestAreRestored() throws Exception {
        Map<String, String> before = snapshot();
        try (Daemon _ = launch(false, "ksm_policy=on", "ksm_max_page_sharing=64")) {
            await(() -> readRun().equals("1"), "run=1");
            await(this::stepped, "the step is told");
            assertEquals("64", Files.readString(ksm.resolve("max_page_sharing")).strip());
            Files.writeString(ksm.resolve("pages_shared"), "5\n");
        }
        Map<String, String> after = snapshot();
        assertEquals("64", after.get("max_page_sharing"), "the kernel refuses it while pages are shared");
        after.put("max_page_sharing", before.get("max_page_sharing"));
        after.put("pages_shared", before.get("pages_shared"));
        assertEquals(before, after, "every other knob is restored");
        assertTrue(notices.stream().anyMatch(n -> n.startsWith("ksm policy: the policy loop could not restore "
                + "max_page_sharing")), notices.toString());
    }

    @Test
    void dryRunDecidesAndTellsButWritesNothing() throws Exception {
        Map<String, String> before = snapshot();
        try (Daemon _ = launch(false, "ksm_policy=dry_run")) {
            await(this::stepped, "the step is told");
            assertEquals(before, snapshot());
        }
        assertEquals(before, snapshot());
        assertTrue(notices.stream().anyMatch(n -> n.startsWith("ksm policy: would write: ")), notices.toString());
    }

    @Test
    void aSteadyStateIsToldOnceNotEveryInterval() throws Exception {
        try (Daemon daemon = launch(false, "ksm_policy=dry_run")) {
            await(this::stepped, "the step is told");
            daemon.reload(DaemonConfig.parse("samepage.conf", List.of("source=" + dir.resolve("vm0.img"),
                    "counters_file=" + dir.resolve("counters"), "ksm_rate=ksmtuned", "ksm_policy=dry_run",
                    "estimate_interval_seconds=1")));
            Thread.sleep(2_500);
        }
        assertEquals(1, notices.stream().filter(n -> n.startsWith("ksm policy: saving: ")).count(), notices.toString());
    }

    @Test
    void aKsmDirectoryThatCannotBeReadIsToldOnceAndTheDaemonRunsOn() throws Exception {
        Files.delete(ksm.resolve("run"));
        Files.createDirectory(ksm.resolve("run"));
        try (Daemon daemon = launch(false, "ksm_policy=on", "estimate_interval_seconds=1")) {
            await(() -> notices.stream().anyMatch(n -> n.endsWith("(the loop goes on)")), "the failure is told");
            Thread.sleep(2_500);
            assertTrue(daemon.engine().counters().pagesTotal() > 0);
        }
        assertEquals(1, notices.stream().filter(n -> n.endsWith("(the loop goes on)")).count(), notices.toString());
    }

    @Test
    void policyOffDrivesNothingAndServesNoPolicyMetrics() throws Exception {
        Map<String, String> before = snapshot();
        try (Daemon daemon = launch(true)) {
            String names = scrape(daemon.metricsPort()).families().keySet().toString();
            assertFalse(names.contains("samepage_ksm_predicted_saving_bytes"), names);
            assertFalse(names.contains("samepage_ksm_policy_backoffs_total"), names);
            assertFalse(names.contains("samepage_ksmd_"), names);
        }
        assertEquals(before, snapshot());
        assertFalse(notices.stream().anyMatch(n -> n.startsWith("ksm policy")), notices.toString());
    }

    @Test
    void aLoopThatRefusesItsSettingsFailsTheLaunchAsAConfigError() {
        KsmPolicyLoop.Context defaultEstimatorOverAFakeProc = new KsmPolicyLoop.Context().ksm(new KernelKsm(ksm, proc));
        DaemonException refused = assertThrows(DaemonException.class, () -> Daemon.launch(DaemonConfig.parse(
                "samepage.conf", List.of("source=" + dir.resolve("vm0.img"), "counters_file=" + dir.resolve("counters"),
                        "ksm_policy=on")).applyTo(new Daemon.Context().noticeHandler(notices::add)
                .ksmPolicyLoop(defaultEstimatorOverAFakeProc))));
        assertEquals(DaemonException.Kind.CONFIG, refused.kind());
        assertTrue(refused.getMessage().startsWith("ksm_policy=on: the default estimator reads this machine's "
                + "processes"), refused.getMessage());
        assertFalse(Files.exists(dir.resolve("counters")), "a failed launch leaves no counters file");
    }
}
