package io.samepage.cli;

import static org.junit.jupiter.api.Assertions.assertDoesNotThrow;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.code_intelligence.jazzer.junit.FuzzTest;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.regex.Pattern;

/**
 * Coverage-guided fuzzing of what {@code samepage similar} reads: the JSON files {@code samepage scan
 * --json} writes, whose sketches come from other hosts. Whatever a file holds, the command either
 * compares its guests (exit 0, JSON out) or refuses the file as bad input (exit 2) with one printable
 * line naming it; never an internal error.
 *
 * <p>The input is the file's bytes; the command runs in this JVM with {@code --json}, the file given
 * twice (so a file with one guest still makes a pair). The seeds ({@code SimilarInputFuzzTestInputs/})
 * are a scan of two small dumps and a file of two hand-written sketches. In {@code ./mvnw verify} this
 * runs for the bound below (see docs/fuzzing.md).
 */
class SimilarInputFuzzTest {

    private static final Pattern NOT_ONE_LINE = Pattern.compile("\\R|\\p{Cntrl}");
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final Path FILE = file();

    @FuzzTest(maxExecutions = 200_000, maxDuration = "20s")
    void anyFileIsComparedOrRefusedWithOneLine(byte[] input) throws IOException {
        Files.write(FILE, input);
        CliRun run = CliRun.of("similar", "--json", FILE.toString(), FILE.toString());
        if (run.exitCode() == 0) {
            assertEquals("", run.stderr());
            assertTrue(assertDoesNotThrow(() -> JSON.readTree(run.stdout())).path("pairs").isArray(), run.stdout());
            return;
        }
        assertEquals(SamepageCommand.EXIT_USAGE, run.exitCode(), run.stderr());
        String line = run.stderr().endsWith("\n") ? run.stderr().substring(0, run.stderr().length() - 1) : "";
        assertTrue(line.startsWith("samepage similar: " + FILE), run.stderr());
        assertFalse(NOT_ONE_LINE.matcher(line).find(), "not one printable line: " + run.stderr());
        assertEquals("", run.stdout());
    }

    private static Path file() {
        try {
            Path directory = Files.createTempDirectory("similar-fuzz");
            directory.toFile().deleteOnExit();
            return directory.resolve("scan.json");
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
