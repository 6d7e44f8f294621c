package io.samepage.e2e;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import io.samepage.testing.ChildJvm;
import io.samepage.testing.PageMixChild;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code samepage similar} on the sketches of live processes, against the exact pairwise counts of the
 * same scan: {@code scan --json --pid} of three child JVMs ({@link PageMixChild}: the same 8 MiB of known
 * content, 1,280 distinct non-zero contents, in each, beside the JVM's own pages), then {@code similar}
 * on that JSON. Each pair's estimate must lie within four standard errors of the bottom-k estimate of
 * the exact {@code shared_contents}: {@code 4 sqrt((1 - J) / (J k))} relative, with J the pair's Jaccard
 * index (exact shared contents over the union, the union from the sketches' distinct counts), about 40%
 * for these JVMs; a bound this wide fails about once in 15,000 pairs by chance alone.
 */
class SimilarPidCommandTest {

    private static final int K = 256;

    private static final List<ChildJvm> children = new ArrayList<>();

    @TempDir
    Path dir;

    @BeforeAll
    static void startChildren() throws Exception {
        for (int i = 0; i < 3; i++) {
            children.add(ChildJvm.start(PageMixChild.class));
        }
    }

    @AfterAll
    static void stopChildren() throws Exception {
        for (ChildJvm child : children) {
            child.close();
        }
    }

    @Test
    void similarOnSketchesOfLiveProcessesEstimatesTheExactSharedContents() throws Exception {
        String pids = String.join(",", children.stream().map(c -> Integer.toString(c.pid())).toList());
        Samepage.Run scan = Samepage.run("scan", "--json", "--pid", pids);
        assertEquals(0, scan.exitCode(), scan.stderr());
        Path json = Files.writeString(dir.resolve("scan.json"), scan.stdout());
        JsonNode c = new com.fasterxml.jackson.databind.ObjectMapper().readTree(scan.stdout());
        JsonNode guests = c.get("guests");
        for (JsonNode guest : guests) {
            JsonNode sketch = guest.get("sketch");
            assertTrue(sketch != null && sketch.isObject(), "a live guest carries a sketch: " + guest);
            assertEquals("nh-public-1", sketch.get("hash").asText());
            assertEquals(K, sketch.get("values").size(), "a JVM holds more distinct pages than a sketch keeps");
            assertEquals(guest.get("pages_read").asLong(), sketch.get("pages").asLong());
        }
        JsonNode similar = Samepage.json("similar", "--json", json.toString());
        JsonNode pairs = c.get("pairs");
        assertEquals(3, pairs.size());
        assertEquals(3, similar.get("pairs").size());
        for (int p = 0; p < 3; p++) {
            JsonNode exact = pairs.get(p);
            JsonNode estimate = similar.get("pairs").get(p);
            assertEquals(json + ":" + exact.get("a").asText(), estimate.get("guest_a").asText());
            assertEquals(json + ":" + exact.get("b").asText(), estimate.get("guest_b").asText());
            double shared = exact.get("shared_contents").asLong();
            assertTrue(shared >= 1_280, "the mix's contents are in every child: " + exact);
            double union = distinct(guests, exact.get("a").asText()) + distinct(guests, exact.get("b").asText()) - shared;
            double jaccard = shared / union;
            double tolerance = 4 * Math.sqrt((1 - jaccard) / (jaccard * K));
            assertTrue(tolerance < 0.6, "J = " + jaccard + " leaves the test too wide to mean anything");
            double error = (estimate.get("shared_pages").asDouble() - shared) / shared;
            assertTrue(Math.abs(error) <= tolerance, String.format(Locale.ROOT,
                    "%s: estimated %d, exact %.0f: error %.3f beyond %.3f", exact, estimate.get("shared_pages").asLong(),
                    shared, error, tolerance));
        }
    }

    private static double distinct(JsonNode guests, String name) {
        for (JsonNode guest : guests) {
            if (guest.get("name").asText().equals(name)) {
                return guest.get("sketch").get("distinct_pages").asDouble();
            }
        }
        throw new AssertionError("no guest " + name);
    }
}
