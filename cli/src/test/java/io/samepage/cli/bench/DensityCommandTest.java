package io.samepage.cli.bench;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
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
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code samepage bench density} in this JVM: option validation, and the files and JSON it writes. */
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

    private String[] density(String... args) throws Exception {
        Path image = TestImages.randomFile(dir, 300, 1);
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
            {"--ksm-timeout-seconds", "0", "--ksm-timeout-seconds 0:"},
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
    void jsonListsEveryModeAtEveryGuestCountAndTheFilesAreWritten() throws Exception {
        Run run = Run.of(density("--guests", "2,1", "--guest-mib", "1", "--json"));
        assertEquals(0, run.exitCode(), run.stderr());
        JsonNode json = new ObjectMapper().readTree(run.stdout());
        Path out = dir.resolve("out");
        assertEquals(json, new ObjectMapper().readTree(Files.readString(out.resolve("density.json"))));
        assertTrue(Files.readString(out.resolve("density.md")).contains("| guests |"));
        byte[] png = Files.readAllBytes(out.resolve("density.png"));
        assertArrayEquals(new byte[] {(byte) 0x89, 'P', 'N', 'G'}, Arrays.copyOf(png, 4));

        assertEquals("[1,2]", json.get("inputs").get("guests").toString(), "sorted");
        assertEquals(256, json.get("content").get("pages_per_guest").asInt());
        for (String mode : List.of("no_dedup", "post_load", "pre_load", "container")) {
            JsonNode results = json.get("modes").get(mode).get("results");
            assertEquals(2, results.size(), mode);
            for (JsonNode r : results) {
                assertTrue(r.get("ran").asBoolean() && r.get("host_bytes").asLong() > 0, mode + ": " + r);
            }
            assertTrue(json.get("modes").get(mode).get("fit_in_budget").get("guests").asLong() > 0, mode);
        }
        for (String mode : List.of("post_load", "pre_load")) {
            for (JsonNode r : json.get("modes").get(mode).get("results")) {
                assertTrue(r.get("seconds_to_99_percent").isNumber(), mode + ": " + r);
                assertTrue(r.get("cpu_seconds_to_99_percent").isNumber(), mode + ": " + r);
            }
        }
        for (String mode : List.of("ksm_defaults", "ksm_full_rate")) {
            assertEquals(0, json.get("modes").get(mode).get("results").size(), mode);
            assertEquals("skipped: --no-ksm", json.get("modes").get(mode).get("note").asText());
        }
        JsonNode checks = json.get("must_show");
        assertEquals(5, checks.size());
        assertTrue(checks.get(0).get("met").isBoolean() && checks.get(1).get("met").isBoolean(), checks.toString());
        for (int i = 2; i < 5; i++) {
            assertTrue(checks.get(i).get("met").isNull(), "needs KSM: " + checks.get(i));
        }
    }

    @Test
    void markdownShowsEachMustShowWithItsVerdict() throws Exception {
        Run run = Run.of(density("--guests", "1,2", "--guest-mib", "1"));
        assertEquals(0, run.exitCode(), run.stderr());
        assertTrue(run.stdout().contains("## Must show"), run.stdout());
        assertEquals(5, run.stdout().lines().filter(l -> l.startsWith("- ") && l.matches(".*\\*\\*(met|NOT met|not measured)\\*\\*")).count(),
                run.stdout());
        assertFalse(run.stdout().contains("NaN"), run.stdout());
    }
}
