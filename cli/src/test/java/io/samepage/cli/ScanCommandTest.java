package io.samepage.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code samepage scan} in this JVM: how zero pages load and count, and how options are refused.
 * The end-to-end tests (src/test) run the launcher on files with known duplication.
 */
class ScanCommandTest {

    private static final int PAGE = 4096;

    @TempDir
    Path dir;

    /** 2 MiB: 192 random pages and 64 zero pages in the first MiB, zeros in the second. */
    private Path dumpWithZeroPages() throws IOException {
        byte[] bytes = new byte[512 * PAGE];
        SplittableRandom random = new SplittableRandom(11);
        for (int page = 0; page < 256; page++) {
            if (page % 4 != 3) {
                for (int i = 0; i < PAGE; i++) {
                    bytes[page * PAGE + i] = (byte) random.nextInt();
                }
            }
        }
        return Files.write(dir.resolve("zeros.img"), bytes);
    }

    private static JsonNode json(CliRun run) throws IOException {
        assertEquals(0, run.exitCode(), run.stderr());
        return new ObjectMapper().readTree(run.stdout());
    }

    @Test
    void allZeroChunksAreNotLoadedAndZeroPagesInDataChunksMapTheZeroFrame() throws IOException {
        JsonNode c = json(CliRun.of("scan", "--json", "--use-zero-pages", dumpWithZeroPages().toString()));
        assertEquals(512, c.get("pages_total").asLong());
        assertEquals(64, c.get("ksm_zero_pages").asLong());
        assertEquals(192, c.get("pages_unshared").asLong());
        assertEquals(0, c.get("pages_shared").asLong());
        assertEquals(0, c.get("pages_sharing").asLong());
        assertEquals(256 * c.get("full_scans").asLong(), c.get("pages_scanned").asLong(),
                "the all-zero MiB is never visited");
        assertEquals(64, c.get("guests").get(0).get("zero_pages").asLong());
    }

    /**
     * Each dump's sketch: the 256 pages of the first MiB counted (the all-zero second MiB is not read), the
     * 192 distinct non-zero contents kept (fewer than k), under the page hash it names.
     */
    @Test
    void eachFileCarriesTheSketchOfItsPages() throws IOException {
        Path dump = dumpWithZeroPages();
        Path copy = Files.copy(dump, dir.resolve("copy.img"));
        JsonNode c = json(CliRun.of("scan", "--json", dump.toString(), copy.toString()));
        for (JsonNode guest : c.get("guests")) {
            JsonNode sketch = guest.get("sketch");
            assertEquals("nh-public-1", sketch.get("hash").asText());
            assertEquals(256, sketch.get("pages").asLong());
            assertEquals(192.0, sketch.get("distinct_pages").asDouble());
            assertEquals(192, sketch.get("values").size());
        }
        assertEquals(c.get("guests").get(0).get("sketch").get("values"), c.get("guests").get(1).get("sketch").get("values"),
                "the same pages give the same sketch");
    }

    @Test
    void withoutUseZeroPagesZeroPagesMergeWithEachOther() throws IOException {
        JsonNode c = json(CliRun.of("scan", "--json", dumpWithZeroPages().toString()));
        assertEquals(0, c.get("ksm_zero_pages").asLong());
        assertEquals(1, c.get("pages_shared").asLong());
        assertEquals(63, c.get("pages_sharing").asLong());
        assertEquals(64, c.get("guests").get(0).get("merging_pages").asLong());
    }

    @Test
    void humanOutputShowsTheCountersSavingsAndOneRowPerGuest() throws IOException {
        CliRun run = CliRun.of("scan", dumpWithZeroPages().toString());
        assertEquals(0, run.exitCode(), run.stderr());
        assertTrue(run.stdout().contains("256 pages in all-zero chunks not loaded"), run.stdout());
        assertTrue(run.stdout().matches("(?s).*\\npages_sharing +63\\n.*"), run.stdout());
        assertTrue(run.stdout().contains("saved: 0.25 MiB of guest memory"), run.stdout());
        assertTrue(run.stdout().matches("(?s).*\\n" + dir + "/zeros.img +shared +512 +64 +0 +\\d+\\n"), run.stdout());
    }

    @Test
    void maxPageSharingBelowTwoIsRefusedWithTheKnobsReason() throws IOException {
        CliRun run = CliRun.of("scan", "--max-page-sharing", "1", dumpWithZeroPages().toString());
        assertEquals(2, run.exitCode());
        assertEquals("samepage scan: --max-page-sharing 1: max_page_sharing must be at least 2, not 1\n", run.stderr());
        assertEquals("", run.stdout());
    }

    @Test
    void poolMibOutOfRangeIsBadUsage() throws IOException {
        CliRun run = CliRun.of("scan", "--pool-mib", "0", dumpWithZeroPages().toString());
        assertEquals(2, run.exitCode());
        assertTrue(run.stderr().startsWith("samepage scan: --pool-mib 0: must be 1 to"), run.stderr());
    }

    @Test
    void aPoolTooSmallForTheSourcesIsAFailureWhileWorking() throws IOException {
        byte[] bytes = new byte[1024 * PAGE];
        new SplittableRandom(5).nextBytes(bytes);
        Path big = Files.write(dir.resolve("big.img"), bytes);
        CliRun run = CliRun.of("scan", "--pool-mib", "2", big.toString());
        assertEquals(1, run.exitCode());
        assertTrue(run.stderr().contains("exhausted") && run.stderr().endsWith("raise --pool-mib\n"), run.stderr());
        assertEquals(1, run.stderr().lines().count(), run.stderr());
        assertEquals("", run.stdout());
    }

    @Test
    void aSourceGivenTwiceIsRefused() throws IOException {
        String dump = dumpWithZeroPages().toString();
        CliRun run = CliRun.of("scan", dump, dump);
        assertEquals(2, run.exitCode());
        assertEquals("samepage scan: " + dump + ": given more than once (a guest's name must be unique)\n",
                run.stderr());
    }

    /**
     * {@code --pid ,} was no pid at all, silently: picocli drops a split list's trailing empty items, so
     * the scan ran on the files alone and exited 0. An empty item is now bad usage naming the option.
     */
    @Test
    void anEmptyItemInThePidListIsBadUsageNamingPid() throws IOException {
        String dump = dumpWithZeroPages().toString();
        for (String pids : new String[] {",", ",,", "1,"}) {
            CliRun run = CliRun.of("scan", dump, "--pid", pids);
            assertEquals(2, run.exitCode(), pids + ": " + run.stdout() + run.stderr());
            assertEquals("samepage scan: --pid '" + pids + "': an empty PID in the list\n", run.stderr());
            assertEquals("", run.stdout());
        }
    }

    @Test
    void noSourceIsBadUsage() {
        CliRun run = CliRun.of("scan");
        assertEquals(2, run.exitCode());
        assertTrue(run.stderr().contains("Missing required parameter: 'SOURCE'"), run.stderr());
    }
}
