package io.samepage.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.samepage.core.DedupEngine;
import io.samepage.core.EngineContext;
import io.samepage.core.Guest;
import io.samepage.daemon.ProcessSource;
import io.samepage.host.KernelKsm;
import io.samepage.testing.SleepingProcess;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.SplittableRandom;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code samepage scan --pid} in this JVM, on a {@code sleep} process: the per-process fields, how
 * options and bad pids are refused, and a process that exits between check and load. The end-to-end
 * tests (src/test) scan a child JVM of known content through the launcher.
 */
class ScanProcessTest {

    @TempDir
    Path dir;

    private Process sleeper;

    @BeforeEach
    void startSleeper() throws IOException, InterruptedException {
        sleeper = SleepingProcess.start(600);
    }

    @AfterEach
    void stopSleeper() throws InterruptedException {
        sleeper.destroyForcibly();
        sleeper.waitFor();
    }

    private static JsonNode json(CliRun run) throws IOException {
        assertEquals(0, run.exitCode(), run.stderr());
        return new ObjectMapper().readTree(run.stdout());
    }

    @Test
    void aProcessIsOneGuestWithItsResidencyAndKernelKsmBesideTheEstimate() throws IOException {
        long pid = sleeper.pid();
        JsonNode c = json(CliRun.of("scan", "--json", "--pid", Long.toString(pid)));
        JsonNode guest = c.get("guests").get(0);
        assertEquals("pid " + pid + " (sleep)", guest.get("name").asText());
        assertEquals(pid, guest.get("pid").asLong());
        assertFalse(guest.get("partial").asBoolean());
        long resident = guest.get("pages_resident").asLong();
        assertTrue(resident > 0, guest.toString());
        assertTrue(guest.get("pages_file_backed").asLong() > 0, "sleep's code is in the page cache: " + guest);
        assertEquals(guest.get("pages_total").asLong(), resident + guest.get("pages_not_resident").asLong()
                + guest.get("pages_file_backed").asLong(), "every page of the guest is in one count");
        assertTrue(c.get("estimated").asBoolean(), "a live source is estimated: " + c);
        assertEquals(resident, c.get("pages_read").asLong(), "only the resident pages are read");
        assertEquals(resident, guest.get("pages_read").asLong());
        assertFalse(c.has("full_scans"), "nothing is merged, so nothing is scanned again");
        if (Files.exists(Path.of("/proc/" + pid + "/ksm_stat"))) {
            JsonNode kernel = guest.get("kernel_ksm");
            for (String name : new String[] {"ksm_rmap_items", "ksm_zero_pages", "ksm_merging_pages", "ksm_process_profit"}) {
                assertTrue(kernel.has(name), name + " in " + kernel);
            }
        } else {
            assertTrue(guest.get("kernel_ksm").isNull());
            assertTrue(guest.get("kernel_ksm_absent").asText().contains("ksm_stat"), guest.toString());
        }
    }

    @Test
    void humanOutputAddsTheProcessAndKernelKsmTables() {
        long pid = sleeper.pid();
        CliRun run = CliRun.of("scan", "--pid", Long.toString(pid));
        assertEquals(0, run.exitCode(), run.stderr());
        assertTrue(run.stdout().contains("Estimated: live sources are read once"), run.stdout());
        assertTrue(run.stdout().matches("(?s).*\\nprocess +pid +pages_resident +pages_not_resident +pages_file_backed"
                + " +partial\\npid " + pid + " \\(sleep\\) +" + pid + " +\\d+ +\\d+ +\\d+ +no\\n.*"), run.stdout());
        assertTrue(run.stdout().contains("What kernel KSM achieves for each process now (/proc/PID/ksm_stat):"),
                run.stdout());
    }

    @Test
    void filesAndProcessesCombineInOneScan() throws IOException {
        byte[] dump = new byte[64 * 4096];
        new SplittableRandom(3).nextBytes(dump);
        Path file = Files.write(dir.resolve("vm.img"), dump);
        JsonNode c = json(CliRun.of("scan", "--json", file.toString(), "--pid", Long.toString(sleeper.pid())));
        assertEquals(2, c.get("guests").size());
        assertEquals(file.toString(), c.get("guests").get(0).get("name").asText());
        assertFalse(c.get("guests").get(0).has("pid"), "a file has no process fields");
        assertEquals(sleeper.pid(), c.get("guests").get(1).get("pid").asLong());
        assertTrue(c.get("estimated").asBoolean(), "with a live source the whole scan is estimated");
        JsonNode pair = c.get("pairs").get(0);
        assertEquals(file.toString(), pair.get("a").asText());
        assertEquals(0, pair.get("shared_contents").asLong(), "random pages share nothing with sleep");
    }

    /** Every guest of an estimated scan carries a sketch, and a file's is the one its exact scan gives. */
    @Test
    void liveSourcesCarrySketchesAndAFilesIsTheSameEstimatedOrExact() throws IOException {
        byte[] dump = new byte[64 * 4096];
        new SplittableRandom(4).nextBytes(dump);
        Path file = Files.write(dir.resolve("vm.img"), dump);
        JsonNode estimated = json(CliRun.of("scan", "--json", file.toString(), "--pid", Long.toString(sleeper.pid())));
        JsonNode exact = json(CliRun.of("scan", "--json", file.toString()));
        assertEquals(exact.get("guests").get(0).get("sketch"), estimated.get("guests").get(0).get("sketch"));
        JsonNode live = estimated.get("guests").get(1).get("sketch");
        assertEquals("nh-public-1", live.get("hash").asText(), estimated.toString());
        assertEquals(estimated.get("guests").get(1).get("pages_read").asLong(), live.get("pages").asLong());
        assertTrue(live.get("values").size() > 0, live.toString());
    }

    @Test
    void aDumpBesideAProcessSharesItsPagesWithACopyOfItself() throws IOException {
        byte[] dump = new byte[64 * 4096];
        new SplittableRandom(5).nextBytes(dump);
        Path a = Files.write(dir.resolve("a.img"), dump);
        Path b = Files.write(dir.resolve("b.img"), dump);
        JsonNode c = json(CliRun.of("scan", "--json", "--max-page-sharing", "32", a.toString(), b.toString(),
                "--pid", Long.toString(sleeper.pid())));
        assertEquals(64, c.get("pairs").get(0).get("shared_contents").asLong(), c.get("pairs").toString());
        assertTrue(c.get("pages_sharing").asLong() >= 64, c.toString());
        assertEquals(32, c.get("max_page_sharing").asLong());
    }

    @Test
    void engineOnlyOptionsAreRefusedWithLiveSources() {
        String pid = Long.toString(sleeper.pid());
        CliRun domains = CliRun.of("scan", "--domain-per-source", "--pid", pid);
        assertEquals(2, domains.exitCode());
        assertTrue(domains.stderr().startsWith("samepage scan: --domain-per-source: live sources are estimated"),
                domains.stderr());
        CliRun pool = CliRun.of("scan", "--pool-mib", "64", "--pid", pid);
        assertEquals(2, pool.exitCode());
        assertTrue(pool.stderr().startsWith("samepage scan: --pool-mib 64: live sources"), pool.stderr());
        CliRun sharing = CliRun.of("scan", "--max-page-sharing", "1", "--pid", pid);
        assertEquals(2, sharing.exitCode());
        assertTrue(sharing.stderr().contains("at least 2"), sharing.stderr());
    }

    @Test
    void eachBadPidExitsTwoWithOneLineNamingTheFirst() {
        CliRun run = CliRun.of("scan", "--pid", "2147483646,2147483647");
        assertEquals(2, run.exitCode());
        assertEquals("samepage scan: pid 2147483646: no such process\n", run.stderr());
        assertEquals("", run.stdout());
    }

    @Test
    void aPidGivenTwiceIsRefused() {
        String pid = Long.toString(sleeper.pid());
        CliRun run = CliRun.of("scan", "--pid", pid, "--pid", pid);
        assertEquals(2, run.exitCode());
        assertEquals("samepage scan: pid " + pid + ": given more than once (a guest's name must be unique)\n",
                run.stderr());
    }

    @Test
    void aPidThatIsNotANumberIsBadUsage() {
        CliRun run = CliRun.of("scan", "--pid", "12x");
        assertEquals(2, run.exitCode());
        assertTrue(run.stderr().startsWith("samepage scan: Invalid value for option '--pid'"), run.stderr());
    }

    @Test
    void aProcessThatExitsAfterItWasCheckedGivesAPartialLoad() throws InterruptedException {
        try (ProcessSource source = ProcessSource.forPid((int) sleeper.pid());
                DedupEngine engine = DedupEngine.create(new EngineContext().poolBytes(16L << 20).conclude())) {
            sleeper.destroyForcibly();
            sleeper.waitFor();
            Guest guest = engine.createGuest(engine.createDomain("shared"), source.name(), source.bytes());
            ProcessSource.Load load = source.loadInto(guest, KernelKsm.system());
            assertTrue(load.partial());
            assertEquals(0, load.pagesResident());
            assertFalse(load.kernelKsm().present(), "a process that is gone has no ksm_stat");
        }
    }
}
