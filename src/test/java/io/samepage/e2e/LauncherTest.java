package io.samepage.e2e;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

/** The launcher and the top-level command, run as a user runs them. */
class LauncherTest {

    @Test
    void helpExplainsTheCommandAndExitsZero() throws Exception {
        Samepage.Run run = Samepage.run("--help");
        assertEquals(0, run.exitCode(), run.stderr());
        assertTrue(run.stdout().startsWith("Usage: samepage"), run.stdout());
        assertTrue(run.stdout().contains("Exit codes:"), run.stdout());
    }

    @Test
    void versionNamesTheReleaseAndAJava25Runtime() throws Exception {
        Samepage.Run run = Samepage.run("--version");
        assertEquals(0, run.exitCode(), run.stderr());
        assertTrue(run.stdout().matches("(?s)samepage \\d+\\.\\d+\\.\\d+.*\\nJava (2[5-9]|[3-9]\\d).*"), run.stdout());
    }

    @Test
    void unknownSubcommandIsOneLineAndExitsTwo() throws Exception {
        Samepage.Run run = Samepage.run("defragment-the-moon");
        assertEquals(2, run.exitCode());
        assertEquals("samepage: unknown subcommand 'defragment-the-moon'\nsee 'samepage --help'\n", run.stderr());
        assertEquals("", run.stdout());
    }

    @Test
    void unknownOptionIsOneLineAndExitsTwo() throws Exception {
        Samepage.Run run = Samepage.run("--frobnicate");
        assertEquals(2, run.exitCode());
        assertEquals("samepage: unknown option '--frobnicate'\nsee 'samepage --help'\n", run.stderr());
    }

    @Test
    void outputToAFullDeviceFailsWithOneLine() throws Exception {
        for (String option : new String[] {"--help", "--version"}) {
            Samepage.Run run = Samepage.run(new java.io.File("/dev/full"), option);
            assertEquals(1, run.exitCode(), option + ": " + run.stderr());
            assertEquals("samepage: cannot write the output: No space left on device\n", run.stderr());
        }
    }

    @Test
    void noSubcommandSaysSoAndExitsTwo() throws Exception {
        Samepage.Run run = Samepage.run();
        assertEquals(2, run.exitCode());
        assertTrue(run.stderr().startsWith("samepage: missing subcommand"), run.stderr());
    }
}
