package io.samepage.daemon;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.samepage.host.GuestSketch;
import io.samepage.testing.ChildJvm;
import io.samepage.testing.PageMixChild;
import java.lang.foreign.MemorySegment;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A running daemon serves every guest's placement sketch at {@code /sketches}, as {@code samepage scan
 * --json} writes them: a file's as it was loaded, a live source's from the last estimate.
 */
class DaemonSketchesTest {

    private static final int PAGES = 64;
    private static final int SHARED = 16;
    private static final ObjectMapper JSON = new ObjectMapper();

    @TempDir
    Path dir;

    @Test
    void sketchesOfFilesAndLiveSourcesAreServedAsScanWritesThem() throws Exception {
        SplittableRandom random = new SplittableRandom(5);
        byte[] a = new byte[PAGES * PageMixChild.PAGE];
        byte[] b = new byte[PAGES * PageMixChild.PAGE];
        random.nextBytes(a);
        random.nextBytes(b);
        System.arraycopy(a, 0, b, 0, SHARED * PageMixChild.PAGE);
        Files.write(dir.resolve("a.img"), a);
        Files.write(dir.resolve("b.img"), b);
        try (ChildJvm child = ChildJvm.start(PageMixChild.class);
                Daemon daemon = Daemon.launch(new Daemon.Context().metricsPort(Daemon.Context.METRICS_PORT_ANY)
                        .sources(List.of(new Source.File(dir.resolve("a.img").toString()),
                                new Source.File(dir.resolve("b.img").toString()), new Source.Pid(child.pid())))
                        .countersFile(dir.resolve("counters")));
                HttpClient client = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(10)).build()) {
            HttpResponse<String> response = client.send(HttpRequest.newBuilder(
                    URI.create("http://127.0.0.1:" + daemon.metricsPort() + MetricsServer.SKETCHES_PATH)).GET().build(),
                    HttpResponse.BodyHandlers.ofString());
            assertEquals(200, response.statusCode());
            assertEquals("application/json", response.headers().firstValue("Content-Type").orElse(""));
            JsonNode guests = JSON.readTree(response.body()).get("guests");
            assertEquals(3, guests.size(), response.body());

            assertEquals(dir.resolve("a.img").toString(), guests.get(0).get("name").asText());
            assertEquals(JSON.writeValueAsString(sketchOf(a).fields()), JSON.writeValueAsString(guests.get(0).get("sketch")));
            assertEquals(JSON.writeValueAsString(sketchOf(b).fields()), JSON.writeValueAsString(guests.get(1).get("sketch")));
            GuestSketch sa = GuestSketch.fromFields(JSON.convertValue(guests.get(0).get("sketch"), Map.class));
            GuestSketch sb = GuestSketch.fromFields(JSON.convertValue(guests.get(1).get("sketch"), Map.class));
            assertEquals(SHARED, GuestSketch.sharedPages(sa, sb), 0.5, "below k the estimate is exact");

            JsonNode live = guests.get(2);
            assertTrue(live.get("name").asText().startsWith("pid " + child.pid() + " "), live.toString());
            assertTrue(live.get("sketch").get("pages").asLong() >= PageMixChild.MIX_PAGES, live.toString());
            assertEquals(GuestSketch.K, live.get("sketch").get("values").size(), "a JVM has more than k contents");
        }
    }

    private static GuestSketch sketchOf(byte[] dump) {
        GuestSketch sketch = new GuestSketch();
        MemorySegment memory = MemorySegment.ofArray(dump);
        for (long offset = 0; offset < dump.length; offset += PageMixChild.PAGE) {
            sketch.addPage(memory, offset);
        }
        return sketch;
    }
}
