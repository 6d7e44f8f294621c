package io.samepage.e2e;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code samepage bench density} through the launcher, at tiny sizes and without kernel KSM. */
class BenchDensityCommandTest {

    @TempDir
    Path dir;

    @Test
    void densityWritesItsJsonMarkdownAndChart() throws Exception {
        Path image = IndexEndToEndTest.writeTree(dir.resolve("image"), new SplittableRandom(3));
        Path out = dir.resolve("density");
        Samepage.Run run = Samepage.run("bench", "density", "--guests", "1,2", "--guest-mib", "4", "--no-ksm",
                "--image", image.toString(), "--out", out.toString(), "--json");
        assertEquals(0, run.exitCode(), run.stderr());
        JsonNode printed = new ObjectMapper().readTree(run.stdout());
        JsonNode written = new ObjectMapper().readTree(Files.readString(out.resolve("density.json")));
        assertEquals(printed, written);
        assertEquals(2, written.get("modes").get("pre_load").get("results").size());
        assertTrue(written.get("modes").get("pre_load").get("results").get(1).get("host_bytes").asLong()
                < written.get("modes").get("no_dedup").get("results").get(1).get("host_bytes").asLong(), written.toString());
        assertTrue(Files.readString(out.resolve("density.md")).contains("## Must show"));
        assertTrue(Files.size(out.resolve("density.png")) > 1000);
    }
}
