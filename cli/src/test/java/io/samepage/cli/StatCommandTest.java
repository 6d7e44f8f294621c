package io.samepage.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.samepage.daemon.CountersFile;
import io.samepage.daemon.CountersFileReader;
import java.io.IOException;
import java.io.StringWriter;
import java.io.UncheckedIOException;
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
        assertEquals("pages_shared           100", lines.get(1));
        assertEquals("guests                 114", lines.get(15));
        assertEquals("frame_release_failures 115", lines.get(16), "the longest name, one space before its value");
        assertEquals("frames_withheld        116", lines.getLast());
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
        Path old = dir.resolve("old");
        writeOldLayout(old);
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

    /**
     * --follow stops at the first report it cannot write (a pipe whose reader left, a full disk): it used
     * to go on printing into the void until killed. Without --count it would never end, so the test
     * fails by its timeout on the old code.
     */
    @Test
    void followStopsWhenItsOutputCannotBeWritten() throws Exception {
        Path path = dir.resolve("counters");
        java.io.Writer full = new java.io.Writer() {
            @Override
            public void write(char[] chars, int offset, int length) throws java.io.IOException {
                throw new java.io.IOException("Broken pipe");
            }

            @Override
            public void flush() throws java.io.IOException {
                throw new java.io.IOException("Broken pipe");
            }

            @Override
            public void close() {
            }
        };
        try (CountersFile _ = countersFile()) {
            CliRun run = org.junit.jupiter.api.Assertions.assertTimeoutPreemptively(java.time.Duration.ofSeconds(20),
                    () -> CliRun.writingTo(SamepageCommand.newCommandLine(), full,
                            "stat", "--follow", "--interval", "0.1", "--counters-file", path.toString()));
            assertEquals(SamepageCommand.EXIT_FAILURE, run.exitCode(), run.stderr());
            assertTrue(run.stderr().startsWith("samepage: cannot write the output"), run.stderr());
        }
    }

    /**
     * A report that fails under --follow is one line on stderr, and the file's name in it cannot drive
     * the terminal: the file (in a directory named with a newline and an ESC sequence) turns into one
     * of the old layout once the first report is printed, so the second report fails on it.
     */
    @Test
    void aFollowedReportThatFailsIsOneEscapedLine() throws Exception {
        Path crafted = Files.createDirectory(dir.resolve("run\n\u001b[31m"));
        Path path = crafted.resolve("counters");
        long[] values = new long[CountersFile.COUNTER_NAMES.size()];
        try (CountersFile file = CountersFile.create(path, ProcessHandle.current().pid(), 1)) {
            file.update(values, System.currentTimeMillis());
        }
        StringWriter out = new StringWriter() {
            private boolean swapped;

            @Override
            public void write(String text, int off, int len) {
                if (!swapped) {     // the first report has read the file: the next one finds the old layout
                    swapped = true;
                    writeOldLayout(path);
                }
                super.write(text, off, len);
            }
        };
        String[] args = {"stat", "--follow", "--interval", "0.1", "--count", "2", "--counters-file", path.toString()};
        CliRun run = CliRun.writingTo(SamepageCommand.newCommandLine(args), out, args);
        assertEquals(0, run.exitCode(), run.stderr());
        assertEquals(1, out.toString().lines().filter(line -> line.startsWith("samepage daemon pid ")).count(),
                out.toString());
        String shown = path.toString().replace("\n", "\\x0a").replace("\u001b", "\\x1b");
        assertEquals("samepage stat: " + shown
                + ": counters file layout version 1, written by an older samepage daemon; "
                + "this samepage reads version 2 (restart the daemon with this samepage)\n", run.stderr());
    }

    private static void writeOldLayout(Path path) {
        ByteBuffer v1 = ByteBuffer.allocate(48 + 8 * 64).order(ByteOrder.LITTLE_ENDIAN);
        v1.putInt(0, 0x4E435053).putInt(4, 1).putLong(24, 1).putInt(40, 64);
        try {
            Files.write(path, v1.array());
        } catch (IOException e) {
            throw new UncheckedIOException(e);
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
