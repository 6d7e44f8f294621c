package io.samepage.e2e;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
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

    private static int freePort() throws IOException {
        try (ServerSocket socket = new ServerSocket(0)) {
            return socket.getLocalPort();
        }
    }

    @Test
    void daemonMergesPublishesAndStopsCleanlyOnSigterm() throws Exception {
        writeDumps();
        int port = freePort();
        Path counters = dir.resolve("run/counters");
        Path config = Files.writeString(dir.resolve("samepage.conf"), String.join("\n",
                "# two dumps with 64 pages in common",
                "source=" + dir.resolve("vm0.img"),
                "source=" + dir.resolve("vm1.img"),
                "pages_to_scan=1000",
                "sleep_millisecs=20",
                "metrics_port=" + port,
                "counters_file=" + counters,
                ""));
        Process daemon = new ProcessBuilder(Samepage.root().resolve("samepage").toString(), "daemon",
                "--config", config.toString())
                .directory(Samepage.root().toFile())
                .redirectOutput(dir.resolve("daemon.out").toFile())
                .redirectError(dir.resolve("daemon.err").toFile())
                .start();
        try {
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
