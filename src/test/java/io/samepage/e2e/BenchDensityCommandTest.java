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

    /**
     * A report that cannot be written whole (here a file-size limit the chart exceeds, as a full disk
     * would stop it) leaves the last report byte for byte and no temporary file: the files were written
     * in place, so a failure left some new, one cut short. Also, XChart's PNG encoder kept a cache file
     * in java.io.tmpdir, which failed the same way before any report file was touched.
     */
    @Test
    void aReportThatCannotBeWrittenWholeLeavesTheLastOneAsItWas() throws Exception {
        Path out = dir.resolve("density");
        Samepage.Run first = Samepage.run("bench", "density", "--guests", "1", "--guest-mib", "1", "--no-ksm",
                "--out", out.toString());
        assertEquals(0, first.exitCode(), first.stderr());
        java.util.Map<String, byte[]> before = new java.util.TreeMap<>();
        try (var files = Files.list(out)) {
            for (Path file : files.toList()) {
                before.put(file.getFileName().toString(), Files.readAllBytes(file));
            }
        }
        assertEquals(java.util.Set.of("density.json", "density.md", "density.png"), before.keySet());
        assertTrue(before.get("density.png").length > 20 * 1024, "the chart must pass the limit below");
        // ulimit -f counts 1024-byte blocks; the JVM ignores SIGXFSZ, so a write past it fails with EFBIG.
        Process limited = new ProcessBuilder("bash", "-c", "ulimit -f 20 && exec \"$0\" \"$@\"",
                Samepage.root().resolve("samepage").toString(), "bench", "density", "--guests", "1", "--guest-mib",
                "2", "--no-ksm", "--out", out.toString())
                .redirectOutput(ProcessBuilder.Redirect.DISCARD).redirectErrorStream(false).start();
        limited.getOutputStream().close();
        String stderr = new String(limited.getErrorStream().readAllBytes(), java.nio.charset.StandardCharsets.UTF_8);
        assertTrue(limited.waitFor(120, java.util.concurrent.TimeUnit.SECONDS));
        assertEquals(1, limited.exitValue(), stderr);
        assertTrue(stderr.endsWith("samepage bench density: --out " + out + ": cannot write density.png: "
                + "file too large\n"), stderr);
        java.util.Map<String, byte[]> after = new java.util.TreeMap<>();
        try (var files = Files.list(out)) {
            for (Path file : files.toList()) {
                after.put(file.getFileName().toString(), Files.readAllBytes(file));
            }
        }
        assertEquals(before.keySet(), after.keySet(), "no temporary file left");
        for (String name : before.keySet()) {
            assertTrue(java.util.Arrays.equals(before.get(name), after.get(name)), name + " changed");
        }
    }
}
