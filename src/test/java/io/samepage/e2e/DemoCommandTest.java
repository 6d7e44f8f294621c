package io.samepage.e2e;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import java.util.List;
import org.junit.jupiter.api.Test;

/** {@code samepage demo}, the README's main job, through the launcher. */
class DemoCommandTest {

    @Test
    void mergingFreesHostFramesAndCopyOnWriteTakesAFewBack() throws Exception {
        JsonNode demo = Samepage.json("demo", "--json");
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
    void humanOutputShowsMemoryBeforeAndAfterMerging() throws Exception {
        Samepage.Run run = Samepage.run("demo", "--guests", "3", "--guest-mib", "4");
        assertEquals(0, run.exitCode(), run.stderr());
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
    void helpDocumentsThePageMixAndExitsZero() throws Exception {
        Samepage.Run run = Samepage.run("demo", "--help");
        assertEquals(0, run.exitCode(), run.stderr());
        assertTrue(run.stdout().startsWith("Usage: samepage demo"), run.stdout());
        for (String text : List.of("--guests", "--guest-mib", "--json", "Default: 4", "Default: 64", "45% OS image",
                "order of", "Exit codes:")) {
            assertTrue(run.stdout().contains(text), text + " in " + run.stdout());
        }
    }
}
