package io.samepage.e2e;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import com.fasterxml.jackson.databind.JsonNode;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.file.StandardOpenOption;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Host mode end to end: three real Linux guests under QEMU (TCG, 256 MiB each), Samepage's read-only
 * estimate of their live memory ({@code scan --pid P1,P2,P3 --use-zero-pages --json}), then kernel
 * KSM run at full rate on the same guests, and the estimate checked against what KSM freed.
 *
 * <p><b>The guests.</b> Each boots the Debian kernel that {@code .ci/install-test-deps} unpacks
 * ({@code samepage.kernel}, set in {@code src/test/pom.xml}; default
 * {@code /var/cache/samepage/kernel/vmlinuz}) with an initramfs this test writes itself (a cpio
 * "newc" archive built in Java, so {@code /dev/console} is a device node without {@code mknod}):
 * static busybox and an {@code /init} that mounts proc, sys and a tmpfs, fills the tmpfs with 48 MiB
 * of a repeated text pattern and 32 MiB of zeros (the same bytes in every guest), prints
 * {@value #READY} on the serial console and sleeps. QEMU runs with {@code -accel tcg} (this
 * machine's {@code /dev/kvm} hangs stock kernels) and its default RAM backend, private anonymous
 * memory that QEMU marks {@code MADV_MERGEABLE}; KSM ignores {@code share=on} backends.
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
 * <p><b>Host state.</b> KSM is global: the test remembers every knob it writes ({@code
 * pages_to_scan}, {@code sleep_millisecs}, {@code use_zero_pages}, {@code run}) and in any case
 * kills the guests, writes {@code run=2} (unmerge everything), restores the knobs and then {@code
 * run}. It needs root, QEMU and the kernel; where QEMU or the kernel is missing it fails saying to
 * run {@code bash .ci/install-test-deps}.
 */
class QemuGuestsKsmTest {

    static final String READY = "SAMEPAGE-GUEST-READY";
    /** Three guests keep the test near 40 s; {@code -Dsamepage.e2e.guests=4} reproduces docs/perf/estimator.md. */
    private static final int GUESTS = Integer.getInteger("samepage.e2e.guests", 3);
    /** The estimate may be this far from what KSM freed, as a share of it. */
    private static final double TOLERANCE = 0.10;
    private static final int GUEST_MIB = 256;
    private static final long BOOT_TIMEOUT_MS = 180_000;
    private static final long KSM_TIMEOUT_MS = 240_000;
    private static final Path KSM = Path.of("/sys/kernel/mm/ksm");
    private static final Path LOCK = Path.of("/tmp/samepage-e2e-kernel-ksm.lock");
    private static final String INSTALL_HINT = "; run ./test (it installs it first) or bash .ci/install-test-deps (as root)";

    private static final String INIT = """
            #!/bin/busybox sh
            /bin/busybox --install -s /bin
            mount -t proc proc /proc
            mount -t sysfs sysfs /sys
            mount -t tmpfs -o size=100m tmpfs /mnt
            yes SAMEPAGE-FILL | head -c 50331648 > /mnt/pattern
            dd if=/dev/zero of=/mnt/zeros bs=1M count=32 2>/dev/null
            sync
            echo %s $(cat /proc/meminfo | head -2 | tr -s ' ' | tr '\\n' ' ')
            while true; do sleep 3600; done
            """.formatted(READY);

    @TempDir
    Path dir;

    @Test
    void samepagesEstimateOfThreeQemuGuestsIsWithinTenPercentOfWhatKernelKsmFrees() throws Exception {
        Path qemu = findOnPath("qemu-system-x86_64");
        Path kernel = Path.of(System.getProperty("samepage.kernel", "/var/cache/samepage/kernel/vmlinuz"));
        Path busybox = Path.of(System.getProperty("samepage.busybox", "/bin/busybox"));
        if (qemu == null) {
            fail("qemu-system-x86_64 is not on PATH" + INSTALL_HINT);
        }
        if (!Files.isRegularFile(kernel)) {
            fail("no guest kernel at " + kernel + " (system property samepage.kernel)" + INSTALL_HINT);
        }
        if (!Files.isRegularFile(busybox)) {
            fail("no static busybox at " + busybox + " (system property samepage.busybox)" + INSTALL_HINT);
        }
        if (!Files.isWritable(KSM.resolve("run"))) {
            fail("the test needs root and kernel KSM at " + KSM);
        }
        Path initramfs = dir.resolve("initramfs.cpio");
        Files.write(initramfs, initramfs(Files.readAllBytes(busybox)));

        // KSM is one per host: two builds running this test at once (two engineers' ./mvnw verify) would
        // read each other's merges and restore each other's knobs. A host-wide lock serializes them.
        try (FileChannel lockFile = FileChannel.open(LOCK, StandardOpenOption.CREATE, StandardOpenOption.WRITE)) {
            FileLock lock = lockFile.lock();
            try {
                bootScanAndMerge(qemu, kernel, initramfs);
            } finally {
                lock.release();
            }
        }
    }

    private void bootScanAndMerge(Path qemu, Path kernel, Path initramfs) throws Exception {
        List<Process> guests = new ArrayList<>();
        List<Path> consoles = new ArrayList<>();
        Map<String, String> saved = new LinkedHashMap<>();
        for (String knob : List.of("pages_to_scan", "sleep_millisecs", "use_zero_pages", "run")) {
            saved.put(knob, knob(knob));
        }
        try {
            for (int i = 0; i < GUESTS; i++) {
                Path console = dir.resolve("console-" + i + ".txt");
                consoles.add(console);
                guests.add(new ProcessBuilder(qemu.toString(), "-name", "samepage-e2e-" + i,
                        "-accel", "tcg", "-m", Integer.toString(GUEST_MIB), "-smp", "1",
                        "-nodefaults", "-nographic", "-display", "none", "-no-reboot",
                        "-serial", "file:" + console,
                        "-kernel", kernel.toString(), "-initrd", initramfs.toString(),
                        "-append", "console=ttyS0 quiet panic=-1 rdinit=/init")
                        .redirectErrorStream(true)
                        .redirectOutput(dir.resolve("qemu-" + i + ".txt").toFile())
                        .redirectInput(ProcessBuilder.Redirect.from(new java.io.File("/dev/null")))
                        .start());
            }
            awaitReady(guests, consoles);
            String pids = guests.stream().map(p -> Long.toString(p.pid())).collect(Collectors.joining(","));

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
            long pssBefore = pssAnonKib(guests);
            Path ksmd = ksmdStat();
            long ksmdTicksBefore = ticks(ksmd);
            List<long[]> progress = new ArrayList<>();

            // Kernel KSM at full rate on the same guests.
            long scansBefore = counter("full_scans");
            writeKnob("run", "0");
            writeKnob("use_zero_pages", "1");
            writeKnob("pages_to_scan", "100000");
            writeKnob("sleep_millisecs", "0");
            writeKnob("run", "1");
            long deadline = System.currentTimeMillis() + KSM_TIMEOUT_MS;
            long lastScans = -1;
            long lastSaving = -1;
            int stableScans = 0;
            while (true) {
                long scans = counter("full_scans");
                long ksmSaving = counter("pages_sharing") + counter("ksm_zero_pages");
                progress.add(new long[] {ticks(ksmd) - ksmdTicksBefore, ksmSaving});
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
            writeKnob("run", "0");
            long kernelSharing = counter("pages_sharing");
            long global = kernelSharing + counter("ksm_zero_pages");
            long perProcess = 0;
            for (Process guest : guests) {
                Map<String, Long> stat = ksmStat(guest.pid());
                perProcess += stat.getOrDefault("ksm_merging_pages", 0L) + stat.getOrDefault("ksm_zero_pages", 0L);
            }
            long ksmReached = Math.min(global, perProcess);
            long pssDropPages = (pssBefore - pssAnonKib(guests)) / 4;
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
                    scansBefore, lastScans, counter("pages_shared"), counter("pages_sharing"),
                    counter("ksm_zero_pages"), perProcess, pssDropPages, saved1, saved2,
                    ticksTo99 / (double) clockTicks(), progress.getLast()[0] / (double) clockTicks());
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
            for (Process guest : guests) {
                guest.destroyForcibly();
            }
            for (Process guest : guests) {
                guest.waitFor(30, TimeUnit.SECONDS);
            }
            restoreKsm(saved);
        }
    }

    /** Waits until every guest has printed {@link #READY}; fails with the consoles if one has not in time. */
    private static void awaitReady(List<Process> guests, List<Path> consoles) throws Exception {
        long deadline = System.currentTimeMillis() + BOOT_TIMEOUT_MS;
        while (true) {
            int ready = 0;
            for (int i = 0; i < guests.size(); i++) {
                if (read(consoles.get(i)).contains(READY)) {
                    ready++;
                } else if (!guests.get(i).isAlive()) {
                    fail("guest " + i + " exited " + guests.get(i).exitValue() + " before " + READY + consolesText(consoles));
                }
            }
            if (ready == guests.size()) {
                return;
            }
            if (System.currentTimeMillis() > deadline) {
                fail(ready + " of " + guests.size() + " guests printed " + READY + " in " + BOOT_TIMEOUT_MS / 1000 + " s"
                        + consolesText(consoles));
            }
            Thread.sleep(250);
        }
    }

    private static String consolesText(List<Path> consoles) throws IOException {
        StringBuilder text = new StringBuilder();
        for (Path console : consoles) {
            String s = read(console);
            text.append("\n--- ").append(console.getFileName()).append(" ---\n")
                    .append(s.length() > 6000 ? s.substring(s.length() - 6000) : s);
        }
        return text.toString();
    }

    private static String read(Path file) throws IOException {
        return Files.exists(file) ? Files.readString(file, StandardCharsets.ISO_8859_1) : "";
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

    /** The guests' summed {@code Pss_Anon} from {@code /proc/PID/smaps_rollup}, in KiB. */
    private static long pssAnonKib(List<Process> guests) throws IOException {
        long sum = 0;
        for (Process guest : guests) {
            for (String line : Files.readAllLines(Path.of("/proc", Long.toString(guest.pid()), "smaps_rollup"))) {
                if (line.startsWith("Pss_Anon:")) {
                    sum += Long.parseLong(line.substring("Pss_Anon:".length()).replace("kB", "").trim());
                }
            }
        }
        return sum;
    }

    /** ksmd's {@code /proc/PID/stat}, or null if there is no ksmd (its CPU time then reads as 0). */
    private static Path ksmdStat() throws IOException {
        try (var dirs = Files.list(Path.of("/proc"))) {
            for (Path dir : dirs.filter(d -> d.getFileName().toString().matches("\\d+")).toList()) {
                try {
                    if (Files.readString(dir.resolve("comm")).trim().equals("ksmd")) {
                        return dir.resolve("stat");
                    }
                } catch (IOException gone) {
                    // the process exited while the list was read
                }
            }
        }
        return null;
    }

    /** CPU time so far (utime + stime, fields 14 and 15 of {@code stat}), in clock ticks. */
    private static long ticks(Path stat) throws IOException {
        if (stat == null) {
            return 0;
        }
        String text = Files.readString(stat);
        String[] fields = text.substring(text.lastIndexOf(')') + 2).split(" ");
        return Long.parseLong(fields[11]) + Long.parseLong(fields[12]);
    }

    private static long clockTicks() throws IOException, InterruptedException {
        Process getconf = new ProcessBuilder("getconf", "CLK_TCK").start();
        String ticks = new String(getconf.getInputStream().readAllBytes(), StandardCharsets.US_ASCII).trim();
        getconf.waitFor();
        return ticks.matches("\\d+") ? Long.parseLong(ticks) : 100;
    }

    private static Map<String, Long> ksmStat(long pid) throws IOException {
        Map<String, Long> stat = new LinkedHashMap<>();
        for (String line : Files.readAllLines(Path.of("/proc", Long.toString(pid), "ksm_stat"))) {
            String[] parts = line.trim().split("\\s+");
            if (parts.length == 2 && parts[1].matches("-?\\d+")) {
                stat.put(parts[0], Long.parseLong(parts[1]));
            }
        }
        return stat;
    }

    private static String knob(String name) throws IOException {
        return Files.readString(KSM.resolve(name)).trim();
    }

    private static long counter(String name) throws IOException {
        return Long.parseLong(knob(name));
    }

    private static void writeKnob(String name, String value) throws IOException {
        Files.writeString(KSM.resolve(name), value);
    }

    /** run=2 unmerges everything the test merged, then every knob goes back, {@code run} last. */
    private static void restoreKsm(Map<String, String> saved) throws IOException {
        IOException failure = null;
        try {
            writeKnob("run", "2");
        } catch (IOException e) {
            failure = e;
        }
        for (Map.Entry<String, String> knob : saved.entrySet()) {
            if (knob.getKey().equals("run")) {
                continue;
            }
            try {
                writeKnob(knob.getKey(), knob.getValue());
            } catch (IOException e) {
                failure = failure == null ? e : failure;
            }
        }
        writeKnob("run", saved.get("run"));
        if (failure != null) {
            throw failure;
        }
    }

    private static Path findOnPath(String name) {
        for (String entry : System.getenv().getOrDefault("PATH", "/usr/bin:/bin").split(":")) {
            Path candidate = Path.of(entry, name);
            if (Files.isExecutable(candidate)) {
                return candidate;
            }
        }
        return null;
    }

    // ---- initramfs: a cpio "newc" archive ----

    private static byte[] initramfs(byte[] busybox) throws IOException {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        int[] ino = {1};
        for (String d : List.of("bin", "dev", "proc", "sys", "mnt", "tmp")) {
            entry(out, ino, d, 0040755, 0, new byte[0]);
        }
        entry(out, ino, "dev/console", 0020600, (5 << 8) | 1, new byte[0]);
        entry(out, ino, "dev/null", 0020666, (1 << 8) | 3, new byte[0]);
        entry(out, ino, "bin/busybox", 0100755, 0, busybox);
        entry(out, ino, "bin/sh", 0120777, 0, "busybox".getBytes(StandardCharsets.US_ASCII));
        entry(out, ino, "init", 0100755, 0, INIT.getBytes(StandardCharsets.US_ASCII));
        entry(out, ino, "TRAILER!!!", 0, 0, new byte[0]);
        return out.toByteArray();
    }

    /** One newc entry; {@code rdev} as major << 8 | minor for device nodes. */
    private static void entry(ByteArrayOutputStream out, int[] ino, String name, int mode, int rdev, byte[] data)
            throws IOException {
        byte[] nameBytes = (name + "\0").getBytes(StandardCharsets.US_ASCII);
        String header = "070701" + hex(ino[0]++) + hex(mode) + hex(0) + hex(0) + hex(1) + hex(0) + hex(data.length)
                + hex(0) + hex(0) + hex(rdev >> 8) + hex(rdev & 0xff) + hex(nameBytes.length) + hex(0);
        out.write(header.getBytes(StandardCharsets.US_ASCII));
        out.write(nameBytes);
        pad(out);
        out.write(data);
        pad(out);
    }

    private static String hex(int value) {
        return String.format("%08x", value);
    }

    private static void pad(ByteArrayOutputStream out) {
        while (out.size() % 4 != 0) {
            out.write(0);
        }
    }
}
