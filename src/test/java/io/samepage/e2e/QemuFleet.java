package io.samepage.e2e;

import static org.junit.jupiter.api.Assertions.fail;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;

/**
 * A few real Linux guests under QEMU for the end-to-end tests that need live memory to estimate and
 * kernel KSM to merge ({@link QemuGuestsKsmTest}, {@link DaemonKsmPolicyEndToEndTest}).
 *
 * <p>Each guest boots the Debian kernel that {@code .ci/install-test-deps} unpacks
 * ({@code samepage.kernel}, set in {@code src/test/pom.xml}; default
 * {@code /var/cache/samepage/kernel/vmlinuz}) with an initramfs written here (a cpio "newc" archive
 * built in Java, so {@code /dev/console} is a device node without {@code mknod}): static busybox and
 * an {@code /init} that mounts proc, sys and a tmpfs, fills the tmpfs with 48 MiB of a repeated text
 * pattern and 32 MiB of zeros (the same bytes in every guest), prints {@value #READY} on the serial
 * console and sleeps. QEMU runs with {@code -accel tcg} (this machine's {@code /dev/kvm} hangs stock
 * kernels), {@value #GUEST_MIB} MiB and its default RAM backend, private anonymous memory that QEMU
 * marks {@code MADV_MERGEABLE}; KSM ignores {@code share=on} backends.
 *
 * <p>{@link #close()} kills the guests and waits for them.
 */
final class QemuFleet implements AutoCloseable {

    static final String READY = "SAMEPAGE-GUEST-READY";
    static final int GUEST_MIB = 256;
    /** Pages of the repeated pattern each guest's tmpfs holds (48 MiB). */
    static final long PATTERN_PAGES = 48L * 256;
    /** Pages of zeros each guest's tmpfs holds (32 MiB). */
    static final long ZERO_PAGES = 32L * 256;

    private static final long BOOT_TIMEOUT_MS = 180_000;
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

    private final List<Process> guests;

    private QemuFleet(List<Process> guests) {
        this.guests = guests;
    }

    /**
     * Boots {@code count} guests (their consoles and QEMU's output in {@code dir}) and waits until each
     * has printed {@link #READY}; fails saying what to install where QEMU, the kernel, busybox or
     * root's KSM is missing. A guest that fails to boot fails the test with the consoles' tails, and
     * every guest started is killed.
     */
    static QemuFleet boot(Path dir, int count) throws Exception {
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
        if (!Files.isWritable(HostKsm.DIRECTORY.resolve("run"))) {
            fail("the test needs root and kernel KSM at " + HostKsm.DIRECTORY);
        }
        Path initramfs = dir.resolve("initramfs.cpio");
        Files.write(initramfs, initramfs(Files.readAllBytes(busybox)));
        List<Process> guests = new ArrayList<>();
        List<Path> consoles = new ArrayList<>();
        QemuFleet fleet = new QemuFleet(guests);
        try {
            for (int i = 0; i < count; i++) {
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
            return fleet;
        } catch (Throwable e) {
            fleet.close();
            throw e;
        }
    }

    /** The QEMU processes, in boot order. */
    List<Process> guests() {
        return guests;
    }

    /** The QEMU pids, comma separated, for {@code --pid}. */
    String pids() {
        return guests.stream().map(p -> Long.toString(p.pid())).collect(Collectors.joining(","));
    }

    /** Fails if a guest has died. */
    void assertAlive() {
        for (Process guest : guests) {
            if (!guest.isAlive()) {
                fail("a guest died during the test (pid " + guest.pid() + ")");
            }
        }
    }

    /** The guests' summed {@code Pss_Anon} from {@code /proc/PID/smaps_rollup}, in KiB. */
    long pssAnonKib() throws IOException {
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

    @Override
    public void close() throws InterruptedException {
        for (Process guest : guests) {
            guest.destroyForcibly();
        }
        for (Process guest : guests) {
            guest.waitFor(30, TimeUnit.SECONDS);
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
