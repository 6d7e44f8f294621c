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
    void unknownSubcommandPrintsUsageAndExitsTwo() throws Exception {
        Samepage.Run run = Samepage.run("defragment-the-moon");
        assertEquals(2, run.exitCode());
        assertTrue(run.stderr().contains("'defragment-the-moon'"), run.stderr());
        assertTrue(run.stderr().contains("Usage: samepage"), run.stderr());
        assertEquals("", run.stdout());
    }

    @Test
    void unknownOptionPrintsUsageAndExitsTwo() throws Exception {
        Samepage.Run run = Samepage.run("--frobnicate");
        assertEquals(2, run.exitCode());
        assertTrue(run.stderr().contains("--frobnicate"), run.stderr());
        assertTrue(run.stderr().contains("Usage: samepage"), run.stderr());
    }

    @Test
    void noSubcommandSaysSoAndExitsTwo() throws Exception {
        Samepage.Run run = Samepage.run();
        assertEquals(2, run.exitCode());
        assertTrue(run.stderr().startsWith("samepage: missing subcommand"), run.stderr());
    }
}
