package io.samepage.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.io.Writer;
import java.nio.file.AccessDeniedException;
import java.util.concurrent.Callable;
import org.junit.jupiter.api.Test;
import picocli.CommandLine.Command;

/**
 * The CLI's one rule for bad input and failures, whatever the subcommand: one line on stderr that names
 * the culprit in plain words, an exit code from {@link SamepageCommand}, nothing on stdout, and no
 * Java exception or stack trace.
 */
class ErrorReportingTest {

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

    @Test
    void anUnexpectedRuntimeExceptionIsOneLineWithTheInternalErrorCode() {
        CliRun run = throwing(new IllegalStateException("frame 7 has no owner"));
        assertEquals(SamepageCommand.EXIT_INTERNAL, run.exitCode());
        assertTrue(run.stderr().startsWith("samepage boom: internal error: frame 7 has no owner"), run.stderr());
        assertOneLine(run);
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

}
