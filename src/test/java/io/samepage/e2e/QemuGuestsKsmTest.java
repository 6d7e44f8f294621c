package io.samepage.e2e;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import com.fasterxml.jackson.databind.JsonNode;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Host mode end to end: three real Linux guests under QEMU (TCG, 256 MiB each), Samepage's read-only
 * estimate of their live memory ({@code scan --pid P1,P2,P3 --use-zero-pages --json}), then kernel
 * KSM run at full rate on the same guests, and the estimate checked against what KSM freed.
 *
 * <p><b>The guests.</b> {@link QemuFleet}'s: each fills a tmpfs with 48 MiB of a repeated text
 * pattern and 32 MiB of zeros (the same bytes in every guest); QEMU's default RAM backend is private
 * anonymous memory that QEMU marks {@code MADV_MERGEABLE}.
 *
 * <p><b>The truth it is compared with.</b> What KSM frees is measured as the drop of the guests'
 * summed {@code Pss_Anon} ({@code /proc/PID/smaps_rollup}) between just before KSM runs and once it has
 * converged at full rate ({@code pages_to_scan=100000}, {@code sleep_millisecs=0}, until two full
 * scans in a row leave {@code pages_sharing + ksm_zero_pages} unchanged) and been stopped with {@code run=0}
 * (which keeps its merges). KSM's own counters are not the truth: they miss the zero subpages of split
 * huge pages (below). The estimate, {@code pages_sharing + ksm_zero_pages} of Samepage's streaming
 * estimate, must be within 10% of that drop, either way. It is taken before KSM runs:
 * after, a page KSM mapped to the zero page is no longer resident and would be missed. {@code --pid}
 * reads QEMU's own heap and stacks too, which KSM does not merge (only the guest RAM is
 * {@code MADV_MERGEABLE}), so the estimate runs a few percent high. With {@code use_zero_pages=0} KSM
 * would merge zero pages with each other into ordinary KSM pages; the test sets {@code use_zero_pages=1}
 * for the KSM run and scans with the matching {@code --use-zero-pages}. The test also prints ksmd's
 * CPU-seconds until KSM's counters first reached 99% of their final value (fields 14 and 15 of ksmd's
 * {@code stat}), the reference docs/perf/estimator.md quotes.
 *
 * <p><b>Transparent huge pages, and why the zero pages differ.</b> QEMU asks for THP on guest RAM
 * ({@code MADV_HUGEPAGE}; this host's THP mode is {@code madvise}), so before KSM runs the guests'
 * RAM is resident in 2 MiB pages, and the estimate counts every all-zero 4 KiB page in it as a {@code
 * ksm_zero_pages} saving. KSM splits a THP to merge its subpages, and on this host (Linux 6.18; since
 * 6.12, "remap unused subpages to shared zeropage when splitting isolated thp") the split itself maps
 * the THP's all-zero subpages to the kernel's shared zero page: they stop being resident, KSM never
 * gets an rmap item for them, and no KSM counter shows them. Measured here: about 9,200 zero pages
 * per guest all map one frame in pagemap after the KSM run, while {@code ksm_zero_pages} reached 99
 * in all (with {@code use_zero_pages=0} the same ~24,400 pages stay outside KSM). So KSM's counters
 * understate what its run freed by those pages, while {@code Pss_Anon} counts them; the test prints
 * both.
 *
 * <p><b>Host state.</b> KSM is global: the test holds {@link HostKsm#LOCK}, remembers every knob
 * and in any case kills the guests, writes {@code run=2} (unmerge everything), restores the knobs it
 * changed and then {@code run}. It needs root, QEMU and the kernel; where QEMU or the kernel is
 * missing it fails saying to run {@code bash .ci/install-test-deps}.
 */
class QemuGuestsKsmTest {

    /** Three guests keep the test near 40 s; {@code -Dsamepage.e2e.guests=4} reproduces docs/perf/estimator.md. */
    private static final int GUESTS = Integer.getInteger("samepage.e2e.guests", 3);
    /** The estimate may be this far from what KSM freed, as a share of it. */
    private static final double TOLERANCE = 0.10;
    private static final long KSM_TIMEOUT_MS = 240_000;

    @TempDir
    Path dir;

    @Test
    void samepagesEstimateOfThreeQemuGuestsIsWithinTenPercentOfWhatKernelKsmFrees() throws Exception {
        HostKsm.withLock(this::bootScanAndMerge);
    }

    private void bootScanAndMerge() throws Exception {
        Map<String, String> saved = HostKsm.knobs();
        QemuFleet fleet = null;
        try {
            fleet = QemuFleet.boot(dir, GUESTS);
            List<Process> guests = fleet.guests();
            String pids = fleet.pids();

            JsonNode first = Samepage.json("scan", "--json", "--use-zero-pages", "--pid", pids);
            JsonNode second = Samepage.json("scan", "--json", "--use-zero-pages", "--pid", pids);
            checkConsistent(first, guests);
            checkConsistent(second, guests);
            long saved1 = saving(first);
            long saved2 = saving(second);
            System.out.printf("QemuGuestsKsmTest: samepage run 1: pages_shared=%d pages_sharing=%d ksm_zero_pages=%d"
                            + " resident=%d; run 2: pages_shared=%d pages_sharing=%d ksm_zero_pages=%d resident=%d%n",
                    first.get("pages_shared").asLong(), first.get("pages_sharing").asLong(),
                    first.get("ksm_zero_pages").asLong(), resident(first),
                    second.get("pages_shared").asLong(), second.get("pages_sharing").asLong(),
                    second.get("ksm_zero_pages").asLong(), resident(second));
            assertTrue(Math.abs(saved1 - saved2) <= Math.max(saved1, saved2) / 100,
                    "two scans of idle guests agree within 1%: " + saved1 + " vs " + saved2);
            // 48 MiB of pattern and 32 MiB of zeros in each of 3 guests: at least 2 x 48 MiB of the pattern
            // can share with the first guest's, and 3 x 32 MiB of zeros need no frame.
            long fill = 2L * 48 * 256 + 3L * 32 * 256;
            assertTrue(saved1 >= fill, "the guests' identical fill is found: " + saved1 + " >= " + fill);

            // The truth: the guests' summed Pss_Anon before KSM runs, and again once it has converged.
            long pssBefore = fleet.pssAnonKib();
            Path ksmd = HostKsm.ksmdStat();
            long ksmdTicksBefore = HostKsm.ticks(ksmd);
            List<long[]> progress = new ArrayList<>();

            // Kernel KSM at full rate on the same guests.
            long scansBefore = HostKsm.counter("full_scans");
            HostKsm.write("run", "0");
            HostKsm.write("use_zero_pages", "1");
            HostKsm.write("pages_to_scan", "100000");
            HostKsm.write("sleep_millisecs", "0");
            HostKsm.write("run", "1");
            long deadline = System.currentTimeMillis() + KSM_TIMEOUT_MS;
            long lastScans = -1;
            long lastSaving = -1;
            int stableScans = 0;
            while (true) {
                long scans = HostKsm.counter("full_scans");
                long ksmSaving = HostKsm.counter("pages_sharing") + HostKsm.counter("ksm_zero_pages");
                progress.add(new long[] {HostKsm.ticks(ksmd) - ksmdTicksBefore, ksmSaving});
                if (scans != lastScans) {
                    stableScans = (ksmSaving == lastSaving) ? stableScans + (int) (scans - lastScans) : 0;
                    lastScans = scans;
                    lastSaving = ksmSaving;
                }
                if (scans >= scansBefore + 3 && stableScans >= 2) {
                    break;
                }
                if (System.currentTimeMillis() > deadline) {
                    fail("KSM did not converge in " + KSM_TIMEOUT_MS / 1000 + " s: full_scans " + scansBefore + " -> "
                            + scans + ", pages_sharing + ksm_zero_pages " + ksmSaving);
                }
                Thread.sleep(200);
            }
            // Stop ksmd (run=0 keeps what it merged) so the counters below are read at rest: while it
            // scans, /proc/PID/ksm_stat's ksm_merging_pages was seen to swing by a third from one read to the next.
            HostKsm.write("run", "0");
            long kernelSharing = HostKsm.counter("pages_sharing");
            long global = kernelSharing + HostKsm.counter("ksm_zero_pages");
            long perProcess = 0;
            for (Process guest : guests) {
                Map<String, Long> stat = HostKsm.ksmStat(guest.pid());
                perProcess += stat.getOrDefault("ksm_merging_pages", 0L) + stat.getOrDefault("ksm_zero_pages", 0L);
            }
            long ksmReached = Math.min(global, perProcess);
            long pssDropPages = (pssBefore - fleet.pssAnonKib()) / 4;
            long finalSaving = progress.getLast()[1];
            long ticksTo99 = progress.getLast()[0];
            for (long[] sample : progress) {
                if (sample[1] >= finalSaving * 0.99) {
                    ticksTo99 = sample[0];
                    break;
                }
            }
            System.out.printf("QemuGuestsKsmTest: kernel KSM after full_scans %d -> %d: pages_shared=%d"
                            + " pages_sharing=%d ksm_zero_pages=%d; per process merging+zero=%d;"
                            + " guests' Pss_Anon dropped by %d pages; samepage estimate %d / %d;"
                            + " ksmd CPU-seconds to 99%% of its final merge %.2f, to convergence %.2f%n",
                    scansBefore, lastScans, HostKsm.counter("pages_shared"), HostKsm.counter("pages_sharing"),
                    HostKsm.counter("ksm_zero_pages"), perProcess, pssDropPages, saved1, saved2,
                    ticksTo99 / (double) HostKsm.clockTicks(), progress.getLast()[0] / (double) HostKsm.clockTicks());
            assertTrue(ksmReached > 0, "KSM merged the guests' RAM: global " + global + ", per process " + perProcess);
            for (long estimate : new long[] {saved1, saved2}) {
                assertTrue(Math.abs(estimate - pssDropPages) <= TOLERANCE * pssDropPages,
                        "Samepage's estimate (" + estimate + " pages) is within 10% of what KSM freed, the drop of"
                                + " the guests' summed Pss_Anon (" + pssDropPages + " pages; KSM's own counters: "
                                + ksmReached + ")");
            }
            for (Process guest : guests) {
                assertTrue(guest.isAlive(), "a guest died during the test");
            }
        } finally {
            if (fleet != null) {
                fleet.close();
            }
            HostKsm.restore(saved);
        }
    }

    private static void checkConsistent(JsonNode c, List<Process> guests) {
        long shared = c.get("pages_shared").asLong();
        long sharing = c.get("pages_sharing").asLong();
        long zero = c.get("ksm_zero_pages").asLong();
        long resident = resident(c);
        assertTrue(shared >= 0 && sharing >= 0 && zero >= 0, c.toString());
        assertTrue(shared <= shared + sharing, c.toString());
        assertTrue(shared + sharing + zero <= resident, "merged and zero pages are resident pages: " + c);
        assertTrue(shared <= sharing || sharing == 0, "every shared page has at least one sharer: " + c);
        JsonNode list = c.get("guests");
        assertEquals(guests.size(), list.size(), c.toString());
        for (int i = 0; i < guests.size(); i++) {
            JsonNode g = list.get(i);
            assertEquals(guests.get(i).pid(), g.get("pid").asLong(), g.toString());
            assertFalse(g.get("partial").asBoolean(), g.toString());
            assertEquals(g.get("pages_total").asLong(), g.get("pages_resident").asLong()
                    + g.get("pages_not_resident").asLong() + g.get("pages_file_backed").asLong(), g.toString());
            // The guest's RAM is at most 256 MiB; QEMU itself adds its heap, so only a loose upper bound.
            assertTrue(g.get("pages_resident").asLong() >= 80L * 256, "the guest's fill is resident: " + g);
        }
    }

    private static long resident(JsonNode c) {
        long sum = 0;
        for (JsonNode g : c.get("guests")) {
            sum += g.get("pages_resident").asLong();
        }
        return sum;
    }

    private static long saving(JsonNode c) {
        return c.get("pages_sharing").asLong() + c.get("ksm_zero_pages").asLong();
    }
}
