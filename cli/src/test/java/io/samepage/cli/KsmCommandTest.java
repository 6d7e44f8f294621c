package io.samepage.cli;

import io.samepage.testing.KsmSysfs;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.samepage.host.KsmKnob;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code samepage ksm status|set|tune} in this JVM against a KSM directory in a temporary directory
 * ({@code --ksm-dir}; {@code tune} reads this machine's processes). The end-to-end tests run them on
 * the real kernel.
 */
class KsmCommandTest {

    @TempDir
    Path root;

    private Path ksm;

    @BeforeEach
    void fakeKernel() throws IOException {
        // A kernel that has merged a little: its counters differ from the boot values.
        ksm = KsmSysfs.write(root.resolve("ksm"), "pages_shared", "10", "pages_sharing", "35", "full_scans", "4",
                "pages_scanned", "400", "ksm_zero_pages", "5", "general_profit", "-4096");
    }

    private Map<String, String> files() throws IOException {
        Map<String, String> files = new TreeMap<>();
        try (var listing = Files.list(ksm)) {
            for (Path file : listing.toList()) {
                files.put(file.getFileName().toString(), Files.readString(file));
            }
        }
        return files;
    }

    private CliRun ksm(String... args) {
        List<String> all = new ArrayList<>(List.of("ksm"));
        all.addAll(List.of(args));
        all.add(2, "--ksm-dir=" + ksm);
        return CliRun.of(all.toArray(String[]::new));
    }

    @Test
    void statusJsonKeysAreTheFileNamesWithNumbersAsNumbers() throws IOException {
        CliRun run = ksm("status", "--json");
        assertEquals(0, run.exitCode(), run.stderr());
        JsonNode json = new ObjectMapper().readTree(run.stdout());
        List<String> keys = new ArrayList<>();
        json.fieldNames().forEachRemaining(keys::add);
        assertEquals(files().keySet(), new java.util.TreeSet<>(keys));
        assertEquals("run", keys.getFirst());
        assertTrue(json.get("pages_sharing").isIntegralNumber());
        assertEquals(-4096, json.get("general_profit").asLong());
        assertEquals("none", json.get("advisor_mode").asText());
    }

    /** Values that are no numbers were read as 0: an empty run as "stopped", garbage pages_shared as "is 0". */
    @Test
    void statusSaysWhatIsNotANumberRatherThanReadingItAsZero() throws IOException {
        Files.writeString(ksm.resolve("run"), "\n");
        Files.writeString(ksm.resolve("pages_shared"), "garbage\n");
        CliRun run = ksm("status");
        assertEquals(0, run.exitCode(), run.stderr());
        assertTrue(run.stdout().startsWith("Kernel KSM at " + ksm + ": run='', not a state KSM has\n"), run.stdout());
        assertTrue(run.stdout().endsWith("sharing ratio: none (pages_shared is 0, or not a number)\n"), run.stdout());
        Files.writeString(ksm.resolve("run"), "4294967297\n");         // 1 in an int
        assertTrue(ksm("status").stdout().contains(": run='4294967297', not a state KSM has\n"));
    }

    @Test
    void statusTextIsATableWithTheSavingAndTheSharingRatio() {
        CliRun run = ksm("status");
        assertEquals(0, run.exitCode(), run.stderr());
        assertTrue(run.stdout().startsWith("Kernel KSM at " + ksm + ": stopped (run=0)\n\nname "), run.stdout());
        assertTrue(run.stdout().contains("\nadvisor_mode                        none\n"), run.stdout());
        assertTrue(run.stdout().endsWith("saved: 0.16 MiB, 163840 bytes ((pages_sharing + ksm_zero_pages) x 4096)\n"
                + "sharing ratio: 3.50 pages per KSM page (pages_sharing / pages_shared)\n"), run.stdout());
    }

    @Test
    void withoutKsmStatusSaysSoAndExitsOne() {
        CliRun run = CliRun.of("ksm", "status", "--ksm-dir", root.resolve("none").toString());
        assertEquals(1, run.exitCode());
        assertEquals("samepage ksm status: this kernel has no KSM: " + root.resolve("none") + " does not exist "
                + "(a kernel built without CONFIG_KSM, or no sysfs mounted)\n", run.stderr());
        assertEquals("", run.stdout());
    }

    @Test
    void setPrintsEachKnobOldToNewInWriteOrder() throws IOException {
        Files.writeString(ksm.resolve("pages_shared"), "0\n");
        CliRun run = ksm("set", "run=1", "sleep_millisecs=50", "max_page_sharing=512", "pages_to_scan=100");
        assertEquals(0, run.exitCode(), run.stderr());
        assertEquals("max_page_sharing: 256 -> 512\npages_to_scan: 100 (unchanged)\nsleep_millisecs: 20 -> 50\n"
                + "run: 0 -> 1\n", run.stdout());
        assertEquals("50", Files.readString(ksm.resolve("sleep_millisecs")), "written as echo -n would");
    }

    @Test
    void aBadPairExitsTwoNamingItAndNothingIsWritten() throws IOException {
        Map<String, String> before = files();
        String[][] cases = {
            {"sleep_millisecs=30", "sleep_milisecs=30"},
            {"sleep_millisecs=30", "max_page_sharing=300"},
            {"run=4"},
            {"sleep_millisecs=30", "pages_shared=0"},
            {"run"},
            {"run=1", "run=0"},
        };
        String[] starts = {
            "sleep_milisecs=30: unknown knob sleep_milisecs; the knobs are run, ",
            "max_page_sharing=300: cannot change while 10 pages are shared (pages_shared); unmerge first: run=2",
            "run=4: 4 is KSM_RUN_OFFLINE",
            "pages_shared=0: pages_shared is a counter",
            "run: expected KNOB=VALUE",
            "run=0: run is given twice (also run=1)",
        };
        for (int i = 0; i < cases.length; i++) {
            List<String> args = new ArrayList<>(List.of("set"));
            args.addAll(List.of(cases[i]));
            CliRun run = ksm(args.toArray(String[]::new));
            assertEquals(2, run.exitCode(), run.stderr());
            assertEquals("", run.stdout());
            assertEquals(1, run.stderr().lines().count(), run.stderr());
            assertTrue(run.stderr().startsWith("samepage ksm set: " + starts[i]), run.stderr());
            assertTrue(run.stderr().strip().endsWith("nothing was written"), run.stderr());
            assertEquals(before, files());
        }
    }

    @Test
    void setHelpListsEveryKnobWithItsRangeAndBootValue() {
        CliRun run = CliRun.of("ksm", "set", "--help");
        assertEquals(0, run.exitCode(), run.stderr());
        String help = run.stdout().replaceAll("\\s+", " ");
        for (KsmKnob knob : KsmKnob.values()) {
            String line = (knob.sysfsName() + ": " + knob.help() + " [" + knob.bootDefault() + "].")
                    .replaceAll("\\s+", " ");
            assertTrue(help.contains(line), line + " in " + run.stdout());
        }
        assertTrue(help.contains("Exit codes: 0 every pair written"), run.stdout());
    }

    @Test
    void tuneDryRunDecidesExplainsAndWritesNothing() throws IOException {
        Map<String, String> before = files();
        CliRun run = ksm("tune", "--dry-run", "--json");
        assertEquals(0, run.exitCode(), run.stderr());
        JsonNode json = new ObjectMapper().readTree(run.stdout());
        assertTrue(json.get("dry_run").asBoolean());
        assertTrue(List.of("merge", "stop").contains(json.get("decision").asText()), run.stdout());
        assertFalse(json.get("reason").asText().isBlank(), run.stdout());
        assertTrue(json.get("steps").size() > 0, run.stdout());
        assertEquals(0, json.get("written").size());
        assertEquals(before, files());
    }

    @Test
    void tuneHelpGivesThePolicyAndEveryOptionsDefault() {
        CliRun run = CliRun.of("ksm", "tune", "--help");
        assertEquals(0, run.exitCode(), run.stderr());
        String help = run.stdout().replaceAll("\\s+", " ");
        for (String text : List.of("--dry-run", "--json", "--min-duplicate-percent=PERCENT", "Default: 5.",
                "--min-saving-mib=MIB", "Default: 64.", "--sample-mib=MIB", "Default: 256.", "--rate=advisor|ksmtuned",
                "--target-scan-time=SECONDS", "max(20% of MemTotal, 2048 KiB)", "sleep_millisecs = max(10, 10 x 16 GiB "
                        + "/ MemTotal)", "run=2 if pages are merged", "Exit codes:")) {
            assertTrue(help.contains(text), text + " in " + run.stdout());
        }
    }

    @Test
    void tuneRefusesOptionsOutOfRange() {
        for (String[] bad : new String[][] {{"--min-duplicate-percent", "101"}, {"--sample-mib", "0"},
            {"--rate", "fast"}, {"--rate", "ksmtuned", "--target-scan-time", "60"}}) {
            List<String> args = new ArrayList<>(List.of("tune", "--dry-run"));
            args.addAll(List.of(bad));
            CliRun run = ksm(args.toArray(String[]::new));
            assertEquals(2, run.exitCode(), String.join(" ", bad));
            assertTrue(run.stderr().startsWith("samepage ksm tune: " + bad[bad.length - 2] + " "), run.stderr());
        }
    }

    @Test
    void ksmWithoutASubcommandIsBadUsage() {
        CliRun run = CliRun.of("ksm");
        assertEquals(2, run.exitCode());
        assertTrue(run.stderr().startsWith("samepage ksm: missing subcommand: status, set or tune"), run.stderr());
    }
}
