package io.samepage.e2e;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermission;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * {@code samepage ksm status|set|tune} through the launcher, on this machine's kernel KSM. A test that
 * writes a knob, or compares the knobs before and after, holds the host-wide lock ({@link HostKsm#withLock}:
 * another build's test may be changing them meanwhile), and one that writes puts it back in a finally.
 * Without {@code /sys/kernel/mm/ksm} they fail, saying why.
 */
class KsmEndToEndTest {

    private static final Path KSM = Path.of("/sys/kernel/mm/ksm");

    @BeforeAll
    static void requireKernelKsm() {
        assertTrue(Files.isDirectory(KSM), "these tests need kernel KSM at " + KSM + ", which this machine lacks "
                + "(a kernel without CONFIG_KSM, or no sysfs): run them on a KSM host");
    }

    /** Every file of the KSM directory with its text. */
    private static Map<String, String> files() throws IOException {
        Map<String, String> files = new TreeMap<>();
        try (Stream<Path> listing = Files.list(KSM)) {
            for (Path file : listing.toList()) {
                files.put(file.getFileName().toString(), Files.readString(file).strip());
            }
        }
        return files;
    }

    /** The writable files (the knobs) with their text. */
    private static Map<String, String> knobs() throws IOException {
        Map<String, String> knobs = new TreeMap<>();
        for (Map.Entry<String, String> file : files().entrySet()) {
            if (Files.getPosixFilePermissions(KSM.resolve(file.getKey())).contains(PosixFilePermission.OWNER_WRITE)) {
                knobs.put(file.getKey(), file.getValue());
            }
        }
        return knobs;
    }

    @Test
    void statusJsonHasEveryFileOfTheKsmDirectoryAsAKey() throws Exception {
        Map<String, String> files = files();
        JsonNode status = Samepage.json("ksm", "status", "--json");
        List<String> keys = new ArrayList<>();
        status.fieldNames().forEachRemaining(keys::add);
        assertEquals(files.keySet(), new TreeSet<>(keys), "one key per file of " + KSM);
        for (Map.Entry<String, String> file : files.entrySet()) {
            JsonNode value = status.get(file.getKey());
            if (file.getValue().matches("-?[0-9]+")) {
                assertTrue(value.isIntegralNumber(), file.getKey() + " is a number: " + value);
            }
        }
        if (status.has("advisor_mode")) {
            assertTrue(List.of("none", "scan-time").contains(status.get("advisor_mode").asText()), status.toString());
        }
    }

    @Test
    void statusTextListsEveryFileAndTheSavingAndSharingRatio() throws Exception {
        Samepage.Run run = Samepage.run("ksm", "status");
        assertEquals(0, run.exitCode(), run.stderr());
        assertTrue(run.stdout().startsWith("Kernel KSM at " + KSM + ": "), run.stdout());
        for (String name : files().keySet()) {
            assertTrue(run.stdout().contains("\n" + name + " "), name + " in " + run.stdout());
        }
        assertTrue(run.stdout().contains("\nsaved: "), run.stdout());
        assertTrue(run.stdout().contains("\nsharing ratio: "), run.stdout());
    }

    @Test
    void setWithABadKnobNameExitsTwoNamingItAndWritesNothing() throws Exception {
        HostKsm.withLock(this::setWithABadKnobName);
    }

    private void setWithABadKnobName() throws Exception {
        Map<String, String> before = knobs();
        Samepage.Run run = Samepage.run("ksm", "set", "sleep_millisecs=" + before.get("sleep_millisecs"),
                "sleep_milisecs=30");
        assertEquals(2, run.exitCode(), run.stderr());
        assertEquals("", run.stdout());
        assertEquals(1, run.stderr().lines().count(), run.stderr());
        assertTrue(run.stderr().startsWith("samepage ksm set: sleep_milisecs=30: unknown knob sleep_milisecs"),
                run.stderr());
        assertEquals(before, knobs());
    }

    @Test
    void setWritesSleepMillisecsAndPrintsTheChange() throws Exception {
        HostKsm.withLock(this::setSleepMillisecs);
    }

    private void setSleepMillisecs() throws Exception {
        String original = knobs().get("sleep_millisecs");
        String next = Long.toString(Long.parseLong(original) + 1);
        try {
            Samepage.Run run = Samepage.run("ksm", "set", "sleep_millisecs=" + next);
            assertEquals(0, run.exitCode(), run.stderr());
            assertEquals("sleep_millisecs: " + original + " -> " + next + "\n", run.stdout());
            assertEquals(next, knobs().get("sleep_millisecs"));
        } finally {
            Files.writeString(KSM.resolve("sleep_millisecs"), original);
        }
        assertEquals(original, knobs().get("sleep_millisecs"));
    }

    @Test
    void tuneDryRunExplainsItsDecisionAndWritesNothing() throws Exception {
        HostKsm.withLock(this::tuneDryRun);
    }

    private void tuneDryRun() throws Exception {
        Map<String, String> before = knobs();
        JsonNode tune = Samepage.json("ksm", "tune", "--dry-run", "--json");
        assertTrue(tune.get("dry_run").asBoolean());
        assertTrue(List.of("merge", "stop").contains(tune.get("decision").asText()), tune.toString());
        assertFalse(tune.get("reason").asText().isBlank(), tune.toString());
        assertTrue(tune.get("processes_seen").asInt() > 0, tune.toString());
        assertTrue(tune.get("steps").size() > 0, tune.toString());
        for (JsonNode step : tune.get("steps")) {
            assertTrue(before.containsKey(step.get("knob").asText()), step.toString());
            assertFalse(step.get("reason").asText().isBlank(), step.toString());
        }
        assertEquals(0, tune.get("written").size());
        assertEquals(before, knobs());
        Samepage.Run text = Samepage.run("ksm", "tune", "--dry-run");
        assertEquals(0, text.exitCode(), text.stderr());
        assertTrue(text.stdout().contains("\ndecision: "), text.stdout());
        assertTrue(text.stdout().endsWith("\ndry run: nothing written\n"), text.stdout());
    }
}
