package io.samepage.cli.bench;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.samepage.cli.SamepageCommand;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code samepage bench density} in this JVM: option validation, and what it prints and writes. What the
 * report holds is the density module's test ({@code DensitySuiteTest}).
 */
class DensityCommandTest {

    /** What one run printed and returned. */
    record Run(int exitCode, String stdout, String stderr) {

        static Run of(String... args) {
            StringWriter out = new StringWriter();
            StringWriter err = new StringWriter();
            var commandLine = SamepageCommand.newCommandLine();
            commandLine.setOut(new PrintWriter(out, true));
            commandLine.setErr(new PrintWriter(err, true));
            return new Run(commandLine.execute(args), out.toString(), err.toString());
        }
    }

    @TempDir
    Path dir;

    /** A file of 300 blocks of random bytes: no zero block, no two blocks alike. */
    private Path image() throws Exception {
        byte[] bytes = new byte[300 * 4096];
        new SplittableRandom(1).nextBytes(bytes);
        return Files.write(dir.resolve("image.raw"), bytes);
    }

    private String[] density(String... args) throws Exception {
        Path image = image();
        List<String> all = new java.util.ArrayList<>(List.of("bench", "density", "--image", image.toString(),
                "--out", dir.resolve("out").toString(), "--no-ksm"));
        all.addAll(Arrays.asList(args));
        return all.toArray(String[]::new);
    }

    @Test
    void badValuesAreRefusedWithExitCodeTwoAndOneLineNamingTheOption() throws Exception {
        String[][] cases = {
            {"--guests", "0", "--guests 0:"}, {"--guests", "1,2000", "--guests 2000:"},
            {"--guest-mib", "0", "--guest-mib 0:"}, {"--unique-percent", "71", "--unique-percent 71:"},
            {"--unique-percent", "-1", "--unique-percent -1:"}, {"--budget-mib", "0", "--budget-mib 0:"},
            {"--ksm-timeout-seconds", "0", "--ksm-timeout-seconds 0:"}, {"--rate-runs", "0", "--rate-runs 0:"},
            {"--rate-runs", "10", "--rate-runs 10:"}, {"--budget-mib", "1073741825", "--budget-mib 1073741825:"},
            {"--guests", ",", "--guests ',': an empty N in the list"},      // was an internal error (exit 70)
            {"--guests", "1,", "--guests '1,': an empty N in the list"},    // the empty item was dropped unsaid
        };
        for (String[] bad : cases) {
            Run run = Run.of(density(bad[0], bad[1]));
            assertEquals(2, run.exitCode(), bad[0] + " " + bad[1] + ": " + run.stderr());
            assertTrue(run.stderr().startsWith("samepage bench density: " + bad[2]), run.stderr());
            assertEquals(1, run.stderr().strip().lines().count(), run.stderr());
        }
    }

    @Test
    void aMissingImageAnUnwritableOutAndAnUnknownOptionAreBadInput() throws Exception {
        Run missing = Run.of("bench", "density", "--no-ksm", "--image", dir.resolve("nothing").toString(),
                "--out", dir.resolve("out").toString());
        assertEquals(2, missing.exitCode());
        assertTrue(missing.stderr().contains("--image " + dir.resolve("nothing") + ": no such file"), missing.stderr());

        Path file = Files.writeString(dir.resolve("a-file"), "x");
        Run out = Run.of("bench", "density", "--no-ksm", "--out", file.toString());
        assertEquals(2, out.exitCode());
        assertTrue(out.stderr().contains("--out " + file), out.stderr());

        Run unknown = Run.of("bench", "density", "--frobnicate");
        assertEquals(2, unknown.exitCode());
        assertTrue(unknown.stderr().contains("--frobnicate"), unknown.stderr());
        assertEquals(2, Run.of("bench").exitCode(), "bench without a subcommand");
        assertEquals(2, Run.of(density("--ksm-defaults", "sometimes")).exitCode());
    }

    @Test
    void jsonIsPrintedAndWrittenBesideTheMarkdownAndTheChart() throws Exception {
        Run run = Run.of(density("--guests", "2,1", "--guest-mib", "1", "--json"));
        assertEquals(0, run.exitCode(), run.stderr());
        JsonNode json = new ObjectMapper().readTree(run.stdout());
        Path out = dir.resolve("out");
        assertEquals(json, new ObjectMapper().readTree(Files.readString(out.resolve("density.json"))));
        assertTrue(Files.readString(out.resolve("density.md")).contains("| guests |"));
        byte[] png = Files.readAllBytes(out.resolve("density.png"));
        assertArrayEquals(new byte[] {(byte) 0x89, 'P', 'N', 'G'}, Arrays.copyOf(png, 4));
        assertEquals("[1,2]", json.get("inputs").get("guests").toString(), "sorted");
        assertTrue(json.get("command").asText().startsWith("samepage bench density --image "), json.get("command").asText());
        assertTrue(run.stderr().startsWith("samepage bench density: N=1: warm-up"), run.stderr());
    }

    @Test
    void withoutJsonItPrintsTheMarkdown() throws Exception {
        Run run = Run.of(density("--guests", "1,2", "--guest-mib", "1"));
        assertEquals(0, run.exitCode(), run.stderr());
        assertEquals(Files.readString(dir.resolve("out").resolve("density.md")), run.stdout());
        assertTrue(run.stdout().contains("## Must show"), run.stdout());
    }
}
