package io.samepage.e2e;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * {@code samepage scan --pid} through the launcher, on a child JVM ({@link PageMixProcess}) whose 8 MiB
 * of known content hold at least 768 pages that can share a frame with a twin and 256 zero pages. The
 * rest of the child's memory (the JVM itself) is unknown, so counts are checked as lower bounds.
 */
class ScanPidCommandTest {

    private static final int KNOWN_SHARING = PageMixProcess.DUPLICATED - PageMixProcess.GROUPS;

    private static Process child;

    @BeforeAll
    static void startChild() throws Exception {
        String java = ProcessHandle.current().info().command().orElseThrow();
        child = new ProcessBuilder(java, "-Xmx64m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-cp",
                System.getProperty("java.class.path"), PageMixProcess.class.getName())
                .redirectError(ProcessBuilder.Redirect.INHERIT)
                .start();
        String line = new BufferedReader(new InputStreamReader(child.getInputStream(), StandardCharsets.UTF_8)).readLine();
        if (line == null || !line.startsWith("ready")) {
            child.destroyForcibly();
            throw new IllegalStateException("PageMixProcess did not start: " + line);
        }
    }

    @AfterAll
    static void stopChild() throws Exception {
        child.getOutputStream().close();
        if (!child.waitFor(30, TimeUnit.SECONDS)) {
            child.destroyForcibly();
        }
    }

    private static String pid() {
        return Long.toString(child.pid());
    }

    @Test
    void theKnownDuplicatesOfALiveProcessAreFoundAndItsOtherPagesAccountedFor() throws Exception {
        JsonNode c = Samepage.json("scan", "--json", "--pid", pid());
        assertTrue(c.get("pages_sharing").asLong() >= KNOWN_SHARING + PageMixProcess.ZEROS - 1,
                "768 duplicates and 255 zero pages beyond the first: " + c);
        assertTrue(c.get("pages_shared").asLong() >= PageMixProcess.GROUPS);
        JsonNode guest = c.get("guests").get(0);
        assertEquals(child.pid(), guest.get("pid").asLong());
        assertTrue(guest.get("name").asText().startsWith("pid " + pid() + " ("), guest.toString());
        assertFalse(guest.get("partial").asBoolean());
        assertTrue(guest.get("merging_pages").asLong() >= PageMixProcess.DUPLICATED + PageMixProcess.ZEROS);
        long resident = guest.get("pages_resident").asLong();
        long notResident = guest.get("pages_not_resident").asLong();
        assertTrue(resident >= PageMixProcess.PAGES);
        assertTrue(notResident > 0, "a JVM reserves far more than it touches");
        assertEquals(guest.get("pages_total").asLong(), resident + notResident + guest.get("pages_file_backed").asLong());
        assertTrue(guest.has("kernel_ksm"));
    }

    @Test
    void withUseZeroPagesTheZeroPagesBecomeKsmZeroPages() throws Exception {
        JsonNode c = Samepage.json("scan", "--json", "--use-zero-pages", "--pid", pid());
        assertTrue(c.get("ksm_zero_pages").asLong() >= PageMixProcess.ZEROS, c.toString());
        assertTrue(c.get("pages_sharing").asLong() >= KNOWN_SHARING, c.toString());
        assertTrue(c.get("guests").get(0).get("zero_pages").asLong() >= PageMixProcess.ZEROS);
    }

    @Test
    void aPidWithoutAProcessExitsTwoWithOneLineNamingIt() throws Exception {
        Samepage.Run run = Samepage.run("scan", "--json", "--pid", "2147483647");
        assertEquals(2, run.exitCode());
        assertEquals("samepage scan: pid 2147483647: no such process\n", run.stderr());
        assertEquals("", run.stdout());
    }

    @Test
    void helpDescribesTheLiveSources() throws Exception {
        Samepage.Run run = Samepage.run("scan", "--help");
        assertEquals(0, run.exitCode(), run.stderr());
        for (String text : List.of("--pid=PID[,PID...]", "--qemu", "pages_not_resident", "kernel_ksm", "partial",
                "combine freely")) {
            assertTrue(run.stdout().contains(text), text + " in " + run.stdout());
        }
    }
}
