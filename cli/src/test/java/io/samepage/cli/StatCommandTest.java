package io.samepage.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.samepage.daemon.CountersFile;
import io.samepage.daemon.CountersFileReader;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code samepage stat}: what it prints of a counters file, and the one line it refuses an old one with. */
class StatCommandTest {

    @TempDir
    Path dir;

    /** A counters file of this process, counter id i holding 100 + i. */
    private CountersFile countersFile() {
        long[] values = new long[CountersFile.COUNTER_NAMES.size()];
        for (int id = 0; id < values.length; id++) {
            values[id] = 100 + id;
        }
        CountersFile file = CountersFile.create(dir.resolve("counters"), ProcessHandle.current().pid(),
                1_700_000_000_000L);
        file.update(values, System.currentTimeMillis());
        return file;
    }

    @Test
    void printsTheDaemonsStateThenEveryCounterInIdOrder() {
        countersFile().close();
        Path path = dir.resolve("counters");
        CliRun run = CliRun.of("stat", "--counters-file", path.toString());
        assertEquals(0, run.exitCode(), run.stderr());
        List<String> lines = run.stdout().lines().toList();
        assertTrue(lines.getFirst().matches("samepage daemon pid " + ProcessHandle.current().pid()
                + ": closed, started 2023-11-14T22:13:20Z, last heartbeat \\d+\\.\\d s ago \\(" + path + "\\)"),
                lines.getFirst());
        assertEquals(1 + CountersFile.COUNTER_NAMES.size(), lines.size());
        assertEquals("pages_shared         100", lines.get(1));
        assertEquals("guests               114", lines.getLast());
    }

    @Test
    void jsonUsesTheCounterNamesAsKeys() throws Exception {
        Path path = dir.resolve("counters");
        try (CountersFile _ = countersFile()) {
            CliRun run = CliRun.of("stat", "--json", "--counters-file", path.toString());
            assertEquals(0, run.exitCode(), run.stderr());
            JsonNode stat = new ObjectMapper().readTree(run.stdout());
            assertEquals("running", stat.get("state").asText());
            assertEquals(101, stat.get("pages_sharing").asLong());
            assertEquals(path.toString(), stat.get("counters_file").asText());
        }
    }

    @Test
    void aCountersFileOfTheOldLayoutIsRefusedOnOneLine() throws Exception {
        ByteBuffer v1 = ByteBuffer.allocate(48 + 8 * 64).order(ByteOrder.LITTLE_ENDIAN);
        v1.putInt(0, 0x4E435053).putInt(4, 1).putLong(24, 1).putInt(40, 64);
        Path old = Files.write(dir.resolve("old"), v1.array());
        CliRun run = CliRun.of("stat", "--counters-file", old.toString());
        assertEquals(SamepageCommand.EXIT_USAGE, run.exitCode());
        assertEquals("samepage stat: " + old + ": counters file layout version 1, written by an older samepage daemon; "
                + "this samepage reads version 2 (restart the daemon with this samepage)\n", run.stderr());
        assertEquals("", run.stdout());
    }

    @Test
    void livenessIsTheHeartbeatsAgeNotWhetherThePidExists() throws Exception {
        Path path = dir.resolve("counters");
        long[] values = new long[CountersFile.COUNTER_NAMES.size()];
        try (CountersFile file = countersFile()) {
            file.update(values, System.currentTimeMillis() - CountersFile.LIVENESS_TIMEOUT_MILLIS - 5_000);
            assertEquals("stale", stat(path).get("state").asText(), "this process lives, its heartbeat is old");
        }
        Process gone = new ProcessBuilder("true").start();
        gone.waitFor();
        try (CountersFile file = CountersFile.create(path, gone.pid(), 1)) {
            file.update(values, System.currentTimeMillis());
            assertEquals("running", stat(path).get("state").asText(), "a fresh heartbeat, whatever the pid");
        }
        long limit = CountersFile.LIVENESS_TIMEOUT_MILLIS;
        assertEquals("closed", new CountersFileReader.Snapshot(1, 0, false, 0, values).state(0));
        assertEquals("running", new CountersFileReader.Snapshot(1, 0, true, 5, values).state(5 + limit));
        assertEquals("stale", new CountersFileReader.Snapshot(1, 0, true, 5, values).state(5 + limit + 1));
    }

    @Test
    void followPrintsAReportEveryIntervalUntilTheCount() throws Exception {
        Path path = dir.resolve("counters");
        try (CountersFile _ = countersFile()) {
            CliRun run = CliRun.of("stat", "--json", "--follow", "--interval", "0.1", "--count", "3",
                    "--counters-file", path.toString());
            assertEquals(0, run.exitCode(), run.stderr());
            List<String> lines = run.stdout().lines().toList();
            assertEquals(3, lines.size(), run.stdout());
            for (String line : lines) {
                assertEquals(101, new ObjectMapper().readTree(line).get("pages_sharing").asLong());
            }
            CliRun text = CliRun.of("stat", "--follow", "--interval", "0.1", "--count", "2", "--counters-file",
                    path.toString());
            assertEquals(2, text.stdout().lines().filter(line -> line.startsWith("samepage daemon pid ")).count());
        }
    }

    @Test
    void aCountWithoutFollowOrATooShortIntervalIsABadCommandLine() {
        CliRun count = CliRun.of("stat", "--count", "2");
        assertEquals(SamepageCommand.EXIT_USAGE, count.exitCode());
        assertTrue(count.stderr().startsWith("samepage stat: --count needs --follow\n"), count.stderr());
        CliRun interval = CliRun.of("stat", "--follow", "--interval", "0.01");
        assertEquals(SamepageCommand.EXIT_USAGE, interval.exitCode());
        assertTrue(interval.stderr().startsWith("samepage stat: --interval must be at least 0.1 seconds, not 0.01\n"),
                interval.stderr());
    }

    private JsonNode stat(Path path) throws Exception {
        CliRun run = CliRun.of("stat", "--json", "--counters-file", path.toString());
        assertEquals(0, run.exitCode(), run.stderr());
        return new ObjectMapper().readTree(run.stdout());
    }
}
