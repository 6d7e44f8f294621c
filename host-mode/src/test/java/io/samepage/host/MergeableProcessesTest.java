package io.samepage.host;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@link MergeableProcesses} on a fake {@code /proc}: which processes count as mergeable, and which of
 * their regions.
 *
 * <p>Process 100 says {@code ksm_mergeable: yes} and has one region with {@code mg} and one without;
 * 200 has an older kernel's {@code ksm_stat} with {@code ksm_rmap_items 9}; 300 says
 * {@code ksm_mergeable: no} although its smaps has {@code mg} (so its smaps is not read); 400 is a
 * kernel thread (empty {@code ksm_stat}); 500 has an older kernel's {@code ksm_stat} with nothing
 * tracked, so only its smaps tells, and it has no mergeable region.
 */
class MergeableProcessesTest {

    private static final int PAGE = 4096;

    @TempDir
    Path root;

    private KernelKsm ksm;

    @BeforeEach
    void writeProc() throws IOException {
        Path proc = Files.createDirectories(root.resolve("proc"));
        ksm = new KernelKsm(root.resolve("ksm"), proc);
        process(proc, 100, KsmStatTest.MERGING, smaps(0x1000_0000L, 32, true, "") + smaps(0x40_0000L, 4, false,
                " /usr/bin/qemu"));
        process(proc, 200, "ksm_rmap_items 9\nksm_merging_pages 0\n", smaps(0x2000_0000L, 16, true, " [heap]"));
        process(proc, 300, "ksm_rmap_items 0\nksm_merge_any: no\nksm_mergeable: no\n", smaps(0x2000_0000L, 16, true, ""));
        process(proc, 400, "", "");
        process(proc, 500, "ksm_rmap_items 0\n", smaps(0x2000_0000L, 16, false, ""));
        Files.createDirectories(proc.resolve("self"));
    }

    private static String smaps(long start, int pages, boolean mergeable, String path) {
        return String.format("%x-%x rw-p 00000000 00:00 0%s%nSize: %d kB%nRss: %d kB%nVmFlags: rd wr mr mw me ac%s%n",
                start, start + (long) pages * PAGE, path, pages * 4, pages * 2, mergeable ? " mg" : "");
    }

    private static void process(Path proc, int pid, String ksmStat, String smaps) throws IOException {
        Path dir = Files.createDirectories(proc.resolve(Integer.toString(pid)));
        Files.writeString(dir.resolve("ksm_stat"), ksmStat);
        Files.writeString(dir.resolve("smaps"), smaps);
        Files.writeString(dir.resolve("comm"), "guest-" + pid + "\n");
    }

    @Test
    void mergeableProcessesComeFromKsmStatAndTheirRegionsFromSmaps() {
        MergeableProcesses.Found found = MergeableProcesses.find(ksm);
        assertEquals(5, found.processesSeen(), "numeric entries only");
        assertEquals(List.of(100, 200), found.processes().stream().map(MergeableProcesses.Process::pid).toList());
        MergeableProcesses.Process first = found.processes().getFirst();
        assertEquals("guest-100", first.command());
        assertEquals(List.of(new MemoryRegion(0x1000_0000L, 0x1000_0000L + 32 * PAGE, "rw-p", 0, "00:00", 0, "")),
                first.regions());
        assertEquals(16 * PAGE, first.residentBytes(), "the Rss of the mergeable region only");
        assertEquals(12, first.ksmZeroPages());
        assertEquals("[heap]", found.processes().get(1).regions().getFirst().path());
        assertEquals(24 * PAGE, found.residentBytes());
        assertEquals(0, found.unreadable());
        assertTrue(found.readAllSmaps(), "process 500's ksm_stat does not say whether it is mergeable");
    }

    @Test
    void aProcessWhoseSmapsCannotBeReadIsCountedNotListed() throws IOException {
        Files.delete(root.resolve("proc/200/smaps"));
        MergeableProcesses.Found found = MergeableProcesses.find(ksm);
        assertEquals(List.of(100), found.processes().stream().map(MergeableProcesses.Process::pid).toList());
        assertEquals(1, found.unreadable());
    }

    @Test
    void withKernelsThatSayWhetherAProcessIsMergeableNoSmapsIsReadInVain() throws IOException {
        Files.writeString(root.resolve("proc/500/ksm_stat"), "ksm_rmap_items 0\nksm_mergeable: no\n");
        assertFalse(MergeableProcesses.find(ksm).readAllSmaps());
    }

    /** A negative or overflowing {@code Rss} (Jazzer found "-16 kB") reads as unknown, never as negative. */
    @Test
    void anRssThatIsNegativeOrTooLargeCountsAsNothing() throws IOException {
        Path proc = root.resolve("proc");
        String region = smaps(0x1000_0000L, 32, true, "");
        process(proc, 600, "ksm_rmap_items 1\n", region.replace("Rss: 64 kB", "Rss: -16 kB")
                + smaps(0x3000_0000L, 8, true, "").replace("Rss: 16 kB", "Rss: " + Long.MAX_VALUE + " kB")
                + smaps(0x5000_0000L, 8, true, ""));
        MergeableProcesses.Process process = MergeableProcesses.read(proc, 600, 0);
        assertEquals(3, process.regions().size());
        assertEquals(16L * 1024, process.residentBytes(), "only the readable Rss counts");
    }

    /**
     * File names and command names are bytes, not UTF-8: any user can map a file named {@code caf\xe9.bin}
     * into a process it marks mergeable. Its smaps was decoded strictly and threw an unchecked
     * MalformedInputException out of {@link MergeableProcesses#find}, so {@code samepage ksm tune} and the
     * daemon's KSM policy failed for every process on the host.
     */
    @Test
    void bytesThatAreNotUtf8InANameAreReadNotFatal() throws IOException {
        Path dir = root.resolve("proc/200");
        byte[] name = {'/', 't', 'm', 'p', '/', 'c', 'a', 'f', (byte) 0xE9, '.', 'b', 'i', 'n'};
        String region = smaps(0x2000_0000L, 16, true, " @");
        int at = region.indexOf('@');
        java.io.ByteArrayOutputStream bytes = new java.io.ByteArrayOutputStream();
        bytes.writeBytes(region.substring(0, at).getBytes(java.nio.charset.StandardCharsets.US_ASCII));
        bytes.writeBytes(name);
        bytes.writeBytes(region.substring(at + 1).getBytes(java.nio.charset.StandardCharsets.US_ASCII));
        Files.write(dir.resolve("smaps"), bytes.toByteArray());
        Files.write(dir.resolve("comm"), new byte[] {'g', (byte) 0xFF, '\n'});
        MergeableProcesses.Found found = MergeableProcesses.find(ksm);
        assertEquals(List.of(100, 200), found.processes().stream().map(MergeableProcesses.Process::pid).toList());
        MergeableProcesses.Process process = found.processes().get(1);
        assertEquals("/tmp/caf\uFFFD.bin", process.regions().getFirst().path(), "the byte replaced, the region kept");
        assertEquals("g\uFFFD", process.command());
        assertEquals(0, found.unreadable());
    }
}
