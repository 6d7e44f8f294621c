package io.samepage.cli.bench;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code samepage bench wasm} in this JVM: option validation, and what it prints and writes. */
class WasmCommandTest {

    @TempDir
    Path dir;

    @Test
    void badValuesAreRefusedWithExitCodeTwoAndOneLineNamingTheOption() {
        String[][] cases = {{"--instances", "1", "--instances 1:"}, {"--data-mib", "0", "--data-mib 0:"},
            {"--cache-pages", "3", "--cache-pages 3:"}, {"--instances", "1000000", "--instances 1000000:"}};
        for (String[] c : cases) {
            DensityCommandTest.Run run = DensityCommandTest.Run.of("bench", "wasm", c[0], c[1], "--out", dir.toString());
            assertEquals(2, run.exitCode(), run.stderr());
            assertTrue(run.stderr().startsWith("samepage bench wasm: " + c[2]), run.stderr());
            assertEquals(1, run.stderr().lines().count(), run.stderr());
        }
        // An --out that cannot be a directory is refused before the benchmark runs (it was found after
        // it, as 'FILE: cannot be read', exit 1).
        Path file = dir.resolve("file");
        DensityCommandTest.Run run;
        try {
            java.nio.file.Files.writeString(file, "x");
            run = DensityCommandTest.Run.of("bench", "wasm", "--instances", "2", "--out", file.toString());
        } catch (java.io.IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
        assertEquals(2, run.exitCode(), run.stderr());
        assertEquals("samepage bench wasm: --out " + file + ": not a directory\n", run.stderr());
    }

    @Test
    void itWritesTheReportAndPrintsTheJson() throws Exception {
        Path out = dir.resolve("out");
        DensityCommandTest.Run run = DensityCommandTest.Run.of("bench", "wasm", "--instances", "3", "--data-mib", "1",
                "--json", "--out", out.toString());
        assertEquals(0, run.exitCode(), run.stderr());
        JsonNode json = new ObjectMapper().readTree(run.stdout());
        assertEquals(3, json.get("results").get("settings").get("instances").asInt());
        assertEquals(3, json.get("mustShow").size());
        for (String file : new String[] {"wasm.json", "wasm.md", "wasm.png"}) {
            assertTrue(Files.size(out.resolve(file)) > 0, file);
        }
    }
}
