package io.samepage.e2e;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import io.samepage.testing.ChildJvm;
import io.samepage.testing.PageMixChild;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * {@code samepage scan --pid} through the launcher, on a child JVM ({@link PageMixChild}) whose 8 MiB
 * of known content (and a 1 MiB sparse region) hold at least 768 pages that can share a frame with a twin and 256 zero pages. The
 * rest of the child's memory (the JVM itself) is unknown, so counts are checked as lower bounds.
 */
class ScanPidCommandTest {

    private static final int KNOWN_SHARING = PageMixChild.DUPLICATED_PAGES - PageMixChild.GROUPS;

    private static ChildJvm child;

    @BeforeAll
    static void startChild() throws Exception {
        child = ChildJvm.start(PageMixChild.class);
    }

    @AfterAll
    static void stopChild() throws Exception {
        child.close();
    }

    private static String pid() {
        return Integer.toString(child.pid());
    }

    @Test
    void theKnownDuplicatesOfALiveProcessAreFoundAndItsOtherPagesAccountedFor() throws Exception {
        JsonNode c = Samepage.json("scan", "--json", "--pid", pid());
        assertTrue(c.get("pages_sharing").asLong() >= KNOWN_SHARING + PageMixChild.ZERO_PAGES - 1,
                "768 duplicates and 255 zero pages beyond the first: " + c);
        assertTrue(c.get("pages_shared").asLong() >= PageMixChild.GROUPS);
        JsonNode guest = c.get("guests").get(0);
        assertEquals(child.pid(), guest.get("pid").asLong());
        assertTrue(guest.get("name").asText().startsWith("pid " + pid() + " ("), guest.toString());
        assertFalse(guest.get("partial").asBoolean());
        assertTrue(guest.get("merging_pages").asLong() >= PageMixChild.DUPLICATED_PAGES + PageMixChild.ZERO_PAGES);
        long resident = guest.get("pages_resident").asLong();
        long notResident = guest.get("pages_not_resident").asLong();
        assertTrue(resident >= PageMixChild.MIX_PAGES);
        assertTrue(notResident > 0, "a JVM reserves far more than it touches");
        assertEquals(guest.get("pages_total").asLong(), resident + notResident + guest.get("pages_file_backed").asLong());
        assertTrue(guest.has("kernel_ksm"));
    }

    @Test
    void withUseZeroPagesTheZeroPagesBecomeKsmZeroPages() throws Exception {
        JsonNode c = Samepage.json("scan", "--json", "--use-zero-pages", "--pid", pid());
        assertTrue(c.get("ksm_zero_pages").asLong() >= PageMixChild.ZERO_PAGES, c.toString());
        assertTrue(c.get("pages_sharing").asLong() >= KNOWN_SHARING, c.toString());
        assertTrue(c.get("guests").get(0).get("zero_pages").asLong() >= PageMixChild.ZERO_PAGES);
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
