package io.samepage.e2e;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code samepage demo}, the README's main job, through the launcher. */
class DemoEndToEndTest {

    @TempDir
    Path dir;

    /** {@code demo --json} with every default: run once, it boots the JDK, which takes a few seconds. */
    private static JsonNode defaultDemo;

    private static synchronized JsonNode defaultDemo() throws Exception {
        if (defaultDemo == null) {
            defaultDemo = Samepage.json("demo", "--json");
        }
        return defaultDemo;
    }

    /** The small directory tree of {@link IndexEndToEndTest#writeTree}: 9 blocks, 1 zero, 5 distinct non-zero. */
    private Path tree(String name) throws Exception {
        return IndexEndToEndTest.writeTree(dir.resolve(name), new SplittableRandom(11));
    }

    @Test
    void mergingFreesHostFramesAndCopyOnWriteTakesAFewBack() throws Exception {
        JsonNode demo = defaultDemo();
        JsonNode before = demo.get("before_merging");
        JsonNode merged = demo.get("after_merging");
        JsonNode written = demo.get("after_copy_on_write");
        assertEquals(4, demo.get("guest_count").asInt());
        assertTrue(merged.get("pages_sharing").asLong() > 0, merged.toString());
        assertTrue(merged.get("ksm_zero_pages").asLong() > 0, merged.toString());
        long framesBefore = before.get("host_frames_in_use").asLong();
        long framesMerged = merged.get("host_frames_in_use").asLong();
        long framesWritten = written.get("host_frames_in_use").asLong();
        assertTrue(framesMerged < framesBefore, framesMerged + " frames after merging, " + framesBefore + " before");
        assertEquals(framesMerged + demo.get("pages_written_after_merge").asLong(), framesWritten);
        assertEquals((framesBefore - framesMerged) * 4096, merged.get("saved_bytes").asLong());
        assertEquals(merged.get("pages_total").asLong() * 2, demo.get("pages_verified").asLong());
        assertEquals(4, written.get("guests").size());
    }

    @Test
    void byDefaultFourGuestsBootTheJdkAndLaterGuestsReadNothing() throws Exception {
        JsonNode image = defaultDemo().get("image");
        assertEquals("directory", image.get("source_kind").asText());
        assertEquals("built_in_memory", image.get("index_origin").asText());
        long blocks = image.get("block_count").asLong();
        long distinct = image.get("distinct_nonzero_blocks").asLong();
        assertTrue(blocks > 10_000, "a JDK is hundreds of MiB: " + image);
        assertEquals(4 * blocks + 1, image.get("without_index").get("host_frames_in_use").asLong());
        assertEquals(distinct + 1, image.get("with_index").get("host_frames_in_use").asLong());
        assertLaterGuestsReadNothing(image, 4);
    }

    @Test
    void bootFromASmallDirectoryMapsWhatTheFirstGuestRead() throws Exception {
        JsonNode image = Samepage.json("demo", "--image", tree("small").toString(), "--guests", "3", "--json")
                .get("image");
        assertEquals(9, image.get("block_count").asLong());
        assertEquals(1, image.get("zero_blocks").asLong());
        assertEquals(5, image.get("distinct_nonzero_blocks").asLong());
        JsonNode without = image.get("without_index");
        for (JsonNode guest : without.get("guests")) {
            assertEquals(9, guest.get("blocks_read").asLong(), without.toString());
        }
        assertEquals(3 * 9 + 1, without.get("host_frames_in_use").asLong());
        JsonNode first = image.get("with_index").get("guests").get(0);
        assertEquals(5, first.get("blocks_read").asLong());
        assertEquals(3, first.get("blocks_mapped").asLong(), "lib/a.so repeats bin/tool");
        assertEquals(1, first.get("zero_blocks").asLong());
        assertEquals(5 + 1, image.get("with_index").get("host_frames_in_use").asLong());
        assertLaterGuestsReadNothing(image, 3);
    }

    @Test
    void aStaleIndexIsRefusedUntilRebuilt() throws Exception {
        Path image = tree("stale");
        Path index = dir.resolve("stale.idx");
        String[] demo = {"demo", "--image", image.toString(), "--index", index.toString(), "--guests", "2",
            "--guest-mib", "1", "--json"};
        assertEquals("built_and_written", Samepage.json(demo).get("image").get("index_origin").asText());

        Path conf = image.resolve("etc/conf");
        Files.setLastModifiedTime(conf, FileTime.fromMillis(Files.getLastModifiedTime(conf).toMillis() + 60_000));
        Samepage.Run stale = Samepage.run(demo);
        assertEquals(2, stale.exitCode(), stale.stderr());
        assertEquals("", stale.stdout());
        assertEquals(1, stale.stderr().lines().count(), stale.stderr());
        assertTrue(stale.stderr().startsWith("samepage demo: " + index + " does not describe " + image
                + " any more: it was modified: its modification time moved"), stale.stderr());
        assertTrue(stale.stderr().contains("--rebuild"), stale.stderr());

        List<String> rebuild = new java.util.ArrayList<>(List.of(demo));
        rebuild.add("--rebuild");
        JsonNode rebuilt = Samepage.json(rebuild.toArray(String[]::new)).get("image");
        assertEquals("built_and_written", rebuilt.get("index_origin").asText());
        assertLaterGuestsReadNothing(rebuilt, 2);
        assertEquals("opened", Samepage.json(demo).get("image").get("index_origin").asText());
    }

    @Test
    void humanOutputShowsTheBootAndMemoryBeforeAndAfterMerging() throws Exception {
        Samepage.Run run = Samepage.run("demo", "--image", tree("human").toString(), "--guests", "3",
                "--guest-mib", "4");
        assertEquals(0, run.exitCode(), run.stderr());
        assertTrue(run.stdout().startsWith("Boot: 3 guests load one image, "), run.stdout());
        assertTrue(run.stdout().matches("(?s).*\\nvm-2 +0 +8 +1 +\\d+\\.\\d\\d +\\d+\\n.*"), run.stdout());
        assertTrue(run.stdout().contains("Host frames in use after 3 guests: 6 (24.0 KiB): the image's 5 distinct "
                + "non-zero blocks, plus the zero frame."), run.stdout());
        assertTrue(run.stdout().contains("before merging  after merging  after copy-on-write"), run.stdout());
        assertTrue(run.stdout().contains("every guest read back exactly what it wrote"), run.stdout());
        assertTrue(run.stdout().matches("(?s).*\\nhost_frames_mib +12\\.00 +\\d.*"), run.stdout());
    }

    @Test
    void oneGuestIsBadUsage() throws Exception {
        Samepage.Run run = Samepage.run("demo", "--guests", "1");
        assertEquals(2, run.exitCode());
        assertEquals("samepage demo: --guests 1: at least 2 guests are needed to share pages\n", run.stderr());
        assertEquals("", run.stdout());
    }

    @Test
    void helpDocumentsTheImageOptionsAndThePageMixAndExitsZero() throws Exception {
        Samepage.Run run = Samepage.run("demo", "--help");
        assertEquals(0, run.exitCode(), run.stderr());
        assertTrue(run.stdout().startsWith("Usage: samepage demo"), run.stdout());
        String help = run.stdout().replaceAll("\\s+", " ");
        for (String text : List.of("--guests", "--guest-mib", "--image", "--index", "--rebuild", "--json",
                "Default: 4.", "Default: 64.", "the JDK this command runs on", "45% OS image", "order of",
                "Exit codes:")) {
            assertTrue(help.contains(text), text + " in " + run.stdout());
        }
    }

    /** Guests after the first read no block: every non-zero block is mapped. */
    private static void assertLaterGuestsReadNothing(JsonNode image, int guests) {
        JsonNode loads = image.get("with_index").get("guests");
        assertEquals(guests, loads.size());
        long blocks = image.get("block_count").asLong();
        long zero = image.get("zero_blocks").asLong();
        for (int g = 1; g < guests; g++) {
            assertEquals(0, loads.get(g).get("blocks_read").asLong(), loads.toString());
            assertEquals(blocks - zero, loads.get(g).get("blocks_mapped").asLong(), loads.toString());
        }
        assertEquals(0.0, image.get("later_guests_read_fraction").asDouble());
    }
}
