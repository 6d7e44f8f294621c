package io.samepage.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.io.Writer;
import java.nio.file.AccessDeniedException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.concurrent.Callable;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine.Command;

/**
 * The CLI's one rule for bad input and failures, whatever the subcommand: one line on stderr that names
 * the culprit in plain words, an exit code from {@link SamepageCommand}, nothing on stdout, and no
 * Java exception or stack trace; and a FIFO is refused wherever a file is read, never waited on.
 */
class ErrorReportingTest {

    private static final Duration NO_HANG = Duration.ofSeconds(20);

    @TempDir
    Path dir;

    /** A subcommand whose work throws what a test gives it. */
    @Command(name = "boom")
    static final class Throwing implements Callable<Integer> {
        private final Throwable thrown;

        Throwing(Throwable thrown) {
            this.thrown = thrown;
        }

        @Override
        public Integer call() {
            if (thrown instanceof Error error) {
                throw error;
            }
            throw (RuntimeException) thrown;
        }
    }

    private static CliRun throwing(Throwable thrown) {
        return CliRun.of(SamepageCommand.newCommandLine().addSubcommand(new Throwing(thrown)), "boom");
    }

    private static void assertOneLine(CliRun run) {
        assertEquals(1, run.stderr().lines().count(), run.stderr());
        assertFalse(run.stderr().contains("Exception") || run.stderr().contains("\tat "), run.stderr());
        assertEquals("", run.stdout());
    }

    private Path fifo(String name) throws IOException, InterruptedException {
        Path fifo = dir.resolve(name);
        assertEquals(0, new ProcessBuilder("mkfifo", fifo.toString()).start().waitFor());
        return fifo;
    }

    private Path image() throws IOException {
        byte[] bytes = new byte[3 * 4096];
        bytes[5] = 1;
        return Files.write(dir.resolve("disk.img"), bytes);
    }

    @Test
    void anUnreadableFileMidWorkIsOneLineWithAPlainReason() {
        CliRun run = throwing(new UncheckedIOException(new AccessDeniedException("/images/tree/locked")));
        assertEquals(SamepageCommand.EXIT_FAILURE, run.exitCode());
        assertEquals("samepage boom: /images/tree/locked: permission denied\n", run.stderr());
        assertOneLine(run);
    }

    @Test
    void runningOutOfMemoryIsOneLineWithTheInternalErrorCode() {
        CliRun run = throwing(new OutOfMemoryError("Java heap space"));
        assertEquals(SamepageCommand.EXIT_INTERNAL, run.exitCode());
        assertTrue(run.stderr().startsWith("samepage boom: out of memory (Java heap space)"), run.stderr());
        assertOneLine(run);
    }

    /** Picocli lets every {@link Error} escape; a stack overflow printed a stack trace and exited 1. */
    @Test
    void aStackOverflowIsOneLineWithTheInternalErrorCode() {
        CliRun run = throwing(new StackOverflowError());
        assertEquals(SamepageCommand.EXIT_INTERNAL, run.exitCode());
        assertTrue(run.stderr().startsWith("samepage boom: internal error: StackOverflowError"), run.stderr());
        assertOneLine(run);
    }

    @Test
    void anUnexpectedRuntimeExceptionIsOneLineWithTheInternalErrorCode() {
        CliRun run = throwing(new IllegalStateException("frame 7 has no owner"));
        assertEquals(SamepageCommand.EXIT_INTERNAL, run.exitCode());
        assertTrue(run.stderr().startsWith("samepage boom: internal error: frame 7 has no owner"), run.stderr());
        assertOneLine(run);
    }

    @Test
    void aFifoAsAnIndexFileIsRefusedNotWaitedOn() throws Exception {
        Path fifo = fifo("disk.idx");
        String image = image().toString();
        for (String[] args : new String[][] {
            {"index", "inspect", fifo.toString()},
            {"index", "verify", fifo.toString(), image},
            {"demo", "--guests", "2", "--guest-mib", "1", "--image", image, "--index", fifo.toString()},
        }) {
            CliRun run = assertTimeoutPreemptively(NO_HANG, () -> CliRun.of(args));
            assertEquals(SamepageCommand.EXIT_USAGE, run.exitCode(), run.stderr());
            assertTrue(run.stderr().endsWith(fifo + ": not a regular file\n"), run.stderr());
            assertOneLine(run);
        }
    }

    @Test
    void aFifoAsACountersOrConfigFileIsRefusedNotWaitedOn() throws Exception {
        Path fifo = fifo("counters");
        CliRun stat = assertTimeoutPreemptively(NO_HANG, () -> CliRun.of("stat", "--counters-file", fifo.toString()));
        assertEquals(SamepageCommand.EXIT_USAGE, stat.exitCode(), stat.stderr());
        assertEquals("samepage stat: " + fifo + ": not a regular file\n", stat.stderr());
        CliRun daemon = assertTimeoutPreemptively(NO_HANG, () -> CliRun.of("daemon", "--config", fifo.toString()));
        assertEquals(SamepageCommand.EXIT_USAGE, daemon.exitCode(), daemon.stderr());
        assertEquals("samepage daemon: " + fifo + ": not a regular file\n", daemon.stderr());
    }

    @Test
    void outputThatCannotBeWrittenIsAFailureNotASuccess() {
        Writer full = new Writer() {
            @Override
            public void write(char[] chars, int offset, int length) throws IOException {
                throw new IOException("No space left on device");
            }

            @Override
            public void flush() throws IOException {
                throw new IOException("No space left on device");
            }

            @Override
            public void close() {
            }
        };
        for (String[] args : new String[][] {{"--help"}, {"--version"}, {"scan", "--help"}}) {
            CliRun run = CliRun.writingTo(SamepageCommand.newCommandLine(), full, args);
            assertEquals(SamepageCommand.EXIT_FAILURE, run.exitCode(), String.join(" ", args) + ": " + run.stderr());
            assertTrue(run.stderr().startsWith("samepage: cannot write the output"), run.stderr());
            assertOneLine(run);
        }
    }

    @Test
    void aParseErrorIsOneLineAndWhereToLookNotTheWholeHelp() {
        CliRun run = CliRun.of("scan", "--frobnicate", "x");
        assertEquals(SamepageCommand.EXIT_USAGE, run.exitCode());
        assertEquals("samepage scan: unknown option '--frobnicate'\nsee 'samepage scan --help'\n", run.stderr());
        assertEquals("", run.stdout());
    }

    /** An argument with a line break in it, quoted by the parse error, stays on the error's one line. */
    @Test
    void aParseErrorQuotingALineBreakStaysOneLine() {
        CliRun run = CliRun.of("scan", "--frob\nnicate");
        assertEquals(SamepageCommand.EXIT_USAGE, run.exitCode());
        assertEquals("samepage scan: unknown option '--frob\\x0anicate'\nsee 'samepage scan --help'\n", run.stderr());
    }

    @Test
    void aMistypedSubcommandGetsASuggestion() {
        CliRun run = CliRun.of("scna", "disk.img");
        assertEquals(SamepageCommand.EXIT_USAGE, run.exitCode());
        assertTrue(run.stderr().startsWith("samepage: unknown subcommand 'scna'; did you mean 'scan'?\n"),
                run.stderr());
        assertTrue(run.stderr().endsWith("\nsee 'samepage --help'\n"), run.stderr());
        assertEquals(2, run.stderr().lines().count(), run.stderr());
    }

    @Test
    void helpForAnUnknownSubcommandIsAnError() {
        CliRun run = CliRun.of("nosuchcommand", "--help");
        assertEquals(SamepageCommand.EXIT_USAGE, run.exitCode(), run.stdout());
        assertEquals("samepage: unknown subcommand 'nosuchcommand'\nsee 'samepage --help'\n", run.stderr());
        assertEquals("", run.stdout());
    }

    @Test
    void errorsGivePlainReasonsNotJavaExceptionText() throws IOException {
        Path directory = Files.createDirectories(dir.resolve("a-directory"));
        CliRun stat = CliRun.of("stat", "--counters-file", directory.toString());
        assertEquals(SamepageCommand.EXIT_USAGE, stat.exitCode());
        assertEquals("samepage stat: " + directory + ": is a directory\n", stat.stderr());
        CliRun daemon = CliRun.of("daemon", "--config", directory.toString());
        assertEquals(SamepageCommand.EXIT_USAGE, daemon.exitCode());
        assertEquals("samepage daemon: " + directory + ": is a directory\n", daemon.stderr());
        CliRun missing = CliRun.of("stat", "--counters-file", dir.resolve("none").toString());
        assertEquals(SamepageCommand.EXIT_USAGE, missing.exitCode());
        assertTrue(missing.stderr().startsWith("samepage stat: " + dir.resolve("none") + ": no counters file"),
                missing.stderr());
    }

    @Test
    void rebuildingAnIndexKeepsTheOldFilesMode() throws IOException {
        Path image = image();
        Path index = dir.resolve("disk.idx");
        assertEquals(0, CliRun.of("index", "build", image.toString(), "-o", index.toString()).exitCode());
        Files.setPosixFilePermissions(index, PosixFilePermissions.fromString("rw-r-----"));
        CliRun run = CliRun.of("index", "build", image.toString(), "-o", index.toString());
        assertEquals(0, run.exitCode(), run.stderr());
        assertEquals("rw-r-----", PosixFilePermissions.toString(Files.getPosixFilePermissions(index)));
    }

    @Test
    void aNewIndexHonoursTheUmask() throws IOException {
        Path index = dir.resolve("new.idx");
        CliRun run = CliRun.of("index", "build", image().toString(), "-o", index.toString());
        assertEquals(0, run.exitCode(), run.stderr());
        Path plain = Files.createFile(dir.resolve("plain"));
        assertEquals(PosixFilePermissions.toString(Files.getPosixFilePermissions(plain)),
                PosixFilePermissions.toString(Files.getPosixFilePermissions(index)),
                "the mode a file created here gets: 0666 less the umask");
    }

    @Test
    void ksmStatusOnADirectoryThatIsNotKsmsIsBadInput() throws IOException {
        Path empty = Files.createDirectories(dir.resolve("empty"));
        CliRun run = CliRun.of("ksm", "status", "--ksm-dir", empty.toString());
        assertEquals(SamepageCommand.EXIT_USAGE, run.exitCode(), run.stdout());
        assertEquals("samepage ksm status: " + empty + ": not a KSM sysfs directory (it has no 'run' file)\n",
                run.stderr());
        assertEquals("", run.stdout());
        // A --ksm-dir that is a file was reported as 'this kernel has no KSM: FILE does not exist', exit 1.
        Path file = Files.writeString(dir.resolve("file"), "1\n");
        for (String[] args : new String[][] {{"status"}, {"set", "run=1"}, {"tune", "--dry-run"}}) {
            java.util.List<String> all = new java.util.ArrayList<>(java.util.List.of("ksm", args[0], "--ksm-dir", file.toString()));
            all.addAll(java.util.List.of(args).subList(1, args.length));
            CliRun notDirectory = CliRun.of(all.toArray(String[]::new));
            assertEquals(SamepageCommand.EXIT_USAGE, notDirectory.exitCode(), notDirectory.stderr());
            assertEquals("samepage ksm " + args[0] + ": --ksm-dir " + file + ": not a directory\n",
                    notDirectory.stderr());
        }
    }

    @Test
    void poolMibRangeInTheHelpIsTheRangeScanAccepts() throws IOException {
        assertTrue(CliRun.of("scan", "--help").stdout().contains("1 to 8388607"), "the range in --help");
        String image = image().toString();
        CliRun over = CliRun.of("scan", "--pool-mib", "8388608", image);
        assertEquals(SamepageCommand.EXIT_USAGE, over.exitCode());
        assertEquals("samepage scan: --pool-mib 8388608: must be 1 to 8388607 (8 TiB less 1 MiB)\n", over.stderr());
    }
}
