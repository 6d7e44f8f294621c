package io.samepage.host;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Finding a QEMU guest's RAM from its command line and maps. The fixtures
 * ({@code synthetic-qemu-tcg-256m.args} and {@code .maps}) are synthetic: written by hand to look like
 * {@code qemu-system-x86_64 -m 256 -accel tcg -kernel ... -initrd ...} on x86-64 (binary and libraries,
 * heap, a 1 GiB executable TCG code buffer, the 256 MiB RAM and its guard page, VGA and ROM blocks, a
 * vCPU stack, [vvar], [vsyscall]), not recorded from a live process.
 */
class QemuGuestsTest {

    private static final long MIB = 1L << 20;
    private static final String RAM_LINE = "7f5e84200000-7f5e94200000 rw-p 00000000 00:00 0 ";

    @TempDir
    Path proc;

    private static List<String> tcgArgs() throws IOException {
        return MemoryMapsTest.resource("synthetic-qemu-tcg-256m.args").lines().toList();
    }

    private static String tcgMaps() throws IOException {
        return MemoryMapsTest.resource("synthetic-qemu-tcg-256m.maps");
    }

    private static QemuCommandLine parse(String... argv) {
        return QemuCommandLine.parse(List.of(argv)).orElseThrow();
    }

    private static QemuGuest locate(QemuCommandLine commandLine, String maps) {
        return QemuGuests.locateRam(4242, commandLine, MemoryMaps.parse(4242, maps));
    }

    @Test
    void aTcgGuestsRamIsTheOneAnonymousRwMappingOfItsSizeNotTheLargerCodeBuffer() throws IOException {
        QemuCommandLine commandLine = QemuCommandLine.parse(tcgArgs()).orElseThrow();
        assertEquals(256 * MIB, commandLine.ramBytes());
        assertEquals(QemuCommandLine.Backing.ANONYMOUS, commandLine.backing());
        assertEquals("tiny1", commandLine.guestName());
        QemuGuest guest = locate(commandLine, tcgMaps());
        assertEquals(QemuGuest.RamMatch.ANONYMOUS_EXACT, guest.foundBy());
        assertEquals(0x7f5e84200000L, guest.ram().start());
        assertEquals(256 * MIB, guest.ram().bytes());
    }

    @Test
    void discoverReadsCmdlineAndMapsOfEveryProcessAndKeepsOnlyQemu() throws IOException {
        byte[] cmdline = (String.join("\0", tcgArgs()) + "\0").getBytes(StandardCharsets.UTF_8);
        write("4242/cmdline", cmdline);
        write("4242/maps", tcgMaps().getBytes(StandardCharsets.UTF_8));
        write("1/cmdline", "/sbin/init\0splash\0".getBytes(StandardCharsets.UTF_8));
        write("1/maps", RAM_LINE.getBytes(StandardCharsets.UTF_8));
        write("2/cmdline", new byte[0]);
        write("77/cmdline", "/usr/bin/qemu-img\0info\0disk.qcow2\0".getBytes(StandardCharsets.UTF_8));
        write("99/cmdline", cmdline);
        Files.createDirectories(proc.resolve("self"));

        List<QemuGuest> guests = QemuGuests.discover(proc);
        assertEquals(1, guests.size(), "pid 99 has no maps (it exited), pid 77 is not a system emulator");
        QemuGuest guest = guests.getFirst();
        assertEquals(4242, guest.pid());
        assertEquals("tiny1", guest.name());
        assertEquals("qemu-system-x86_64", guest.commandLine().binary());
        assertEquals(0x7f5e84200000L, guest.ram().start());
    }

    private void write(String file, byte[] bytes) throws IOException {
        Files.createDirectories(proc.resolve(file).getParent());
        Files.write(proc.resolve(file), bytes);
    }

    @Test
    void ramSizesAreReadInEveryFormQemuAccepts() {
        assertEquals(256 * MIB, QemuCommandLine.sizeBytes("256"));
        assertEquals(256 * MIB, QemuCommandLine.sizeBytes("256M"));
        assertEquals(256 * MIB, QemuCommandLine.sizeBytes("256m"));
        assertEquals(1024 * MIB, QemuCommandLine.sizeBytes("1G"));
        assertEquals(1536 * MIB, QemuCommandLine.sizeBytes("1.5G"));
        assertEquals(2 * MIB, QemuCommandLine.sizeBytes("2048k"));
        assertEquals(1024 * MIB, QemuCommandLine.sizeBytes("1073741824B"));
        assertEquals(256 * MIB, QemuCommandLine.sizeBytes("0x100"));
        assertEquals(-1, QemuCommandLine.sizeBytes("abc"));
        assertEquals(-1, QemuCommandLine.sizeBytes("1Z"));
        assertEquals(-1, QemuCommandLine.sizeBytes("99999999999E"));
        assertEquals(-1, QemuCommandLine.sizeBytes(""));
        assertEquals(4096 * MIB, parse("qemu-system-x86_64", "-m", "size=4G,slots=2,maxmem=16G").ramBytes());
        assertEquals(2048 * MIB, parse("/usr/bin/qemu-system-aarch64", "--m", "2G,maxmem=4G").ramBytes());
        assertEquals(QemuCommandLine.DEFAULT_RAM_BYTES, parse("qemu-system-x86_64", "-nographic").ramBytes());
    }

    @Test
    void anUnreadableSizeIsAProblemNotAGuess() {
        QemuCommandLine commandLine = parse("qemu-system-x86_64", "-m", "lots");
        assertEquals(-1, commandLine.ramBytes());
        assertEquals("cannot read the RAM size from -m lots", commandLine.problem());
        QemuGuest guest = QemuGuests.locateRam(1, commandLine, List.of());
        assertEquals(QemuGuest.RamMatch.NOT_FOUND, guest.foundBy());
        assertNull(guest.ram());
        assertEquals("cannot read the RAM size from -m lots", guest.problem());
        assertEquals("cannot read the RAM size from -m ", parse("qemu-system-x86_64", "-m").problem());
    }

    @Test
    void aMemfdBackendIsFoundByItsMemfdNameAndSize() throws IOException {
        QemuCommandLine commandLine = parse("qemu-system-x86_64", "-machine", "q35,accel=kvm,memory-backend=mem",
                "-object", "memory-backend-memfd,id=mem,size=256M,share=on", "-m", "256");
        assertEquals(QemuCommandLine.Backing.MEMFD, commandLine.backing());
        String maps = tcgMaps().replace(RAM_LINE, "7f5e84200000-7f5e94200000 rw-s 00000000 00:01 2054"
                + "                       /memfd:memory-backend-memfd (deleted)");
        QemuGuest guest = locate(commandLine, maps);
        assertEquals(QemuGuest.RamMatch.MEMORY_BACKEND_MEMFD, guest.foundBy());
        assertEquals(0x7f5e84200000L, guest.ram().start());
    }

    @Test
    void libvirtsJsonMemoryBackendIsRead() throws IOException {
        QemuCommandLine commandLine = parse("/usr/bin/qemu-system-x86_64", "-name", "guest=web1,debug-threads=on",
                "-machine", "pc-q35-8.2,usb=off,memory-backend=pc.ram", "-m", "size=262144k",
                "-object", "{\"qom-type\":\"memory-backend-memfd\",\"id\":\"pc.ram\",\"share\":true,\"size\":268435456}");
        assertEquals(QemuCommandLine.Backing.MEMFD, commandLine.backing());
        assertEquals(256 * MIB, commandLine.ramBytes());
        assertEquals("web1", commandLine.guestName());
    }

    /**
     * A JSON {@code -object} member as long as a command line allows (any local user can start a
     * process named qemu-system-x86_64 with one) is read like a short one: the string scan once recursed
     * per character and overflowed the stack at about 1,600.
     */
    @Test
    void aLongJsonStringMemberIsReadWithoutOverflowingTheStack() {
        String id = "x".repeat(200_000);
        QemuCommandLine commandLine = parse("qemu-system-x86_64", "-machine", "memory-backend=" + id, "-object",
                "{\"qom-type\":\"memory-backend-file\",\"id\":\"" + id + "\",\"size\":268435456,"
                        + "\"mem-path\":\"/dev/hugepages/a\\\"b\\\\c\"}");
        assertEquals(QemuCommandLine.Backing.FILE, commandLine.backing());
        assertEquals(256 * MIB, commandLine.ramBytes());
        assertEquals("/dev/hugepages/a\"b\\c", commandLine.memPath(), "only \\\" and \\\\ are unescaped");
        QemuCommandLine unterminated = parse("qemu-system-x86_64", "-m", "256M", "-object",
                "{\"qom-type\":\"memory-backend-ram\",\"id\":\"" + id);
        assertEquals(256 * MIB, unterminated.ramBytes(), "an unterminated string is no backend");
    }

    @Test
    void aFileBackendIsTheMappingOfItsFileOrOfAFileInItsDirectory() throws IOException {
        String hugetlbfs = tcgMaps().replace(RAM_LINE, "7f5e84200000-7f5e94200000 rw-s 00000000 00:2f 31337"
                + "                      /dev/hugepages/qemu_back_mem.pc.ram.Ab12Cd (deleted)");
        QemuGuest inDirectory = locate(parse("qemu-system-x86_64", "-m", "256M", "-mem-path", "/dev/hugepages/"), hugetlbfs);
        assertEquals(QemuGuest.RamMatch.MEMORY_BACKEND_FILE, inDirectory.foundBy());
        assertEquals(0x7f5e84200000L, inDirectory.ram().start());

        String file = tcgMaps().replace(RAM_LINE, "7f5e84200000-7f5e94200000 rw-s 00000000 00:1a 4711"
                + "                       /srv/vm,one/ram.img");
        QemuCommandLine commandLine = parse("qemu-system-x86_64", "-machine", "memory-backend=ram0", "-object",
                "memory-backend-file,id=ram0,size=256M,mem-path=/srv/vm,,one/ram.img,share=on");
        assertEquals("/srv/vm,one/ram.img", commandLine.memPath(), "QEMU's ,, is a comma");
        assertEquals(QemuGuest.RamMatch.MEMORY_BACKEND_FILE, locate(commandLine, file).foundBy());

        QemuGuest missing = locate(commandLine, tcgMaps());
        assertEquals(QemuGuest.RamMatch.NOT_FOUND, missing.foundBy());
        assertEquals("no mapping of /srv/vm,one/ram.img or of a file in it, of at least 268435456 bytes",
                missing.problem());
    }

    @Test
    void withoutOneExactAnonymousMappingTheLargestAtLeastTheRamSizeIsTakenAsAGuess() throws IOException {
        String merged = tcgMaps().replace(RAM_LINE, "7f5e84000000-7f5e94200000 rw-p 00000000 00:00 0 ")
                .replace("7f5e84000000-7f5e84001000 ---p 00000000 00:00 0 \n", "");
        QemuGuest guest = locate(parse("qemu-system-x86_64", "-m", "256"), merged);
        assertEquals(QemuGuest.RamMatch.LARGEST_ANONYMOUS, guest.foundBy());
        assertEquals(0x7f5e84000000L, guest.ram().start());
        assertEquals(258 * MIB, guest.ram().bytes());

        QemuGuest twoExact = locate(parse("qemu-system-x86_64", "-m", "16"), tcgMaps().replace(RAM_LINE,
                "7f5e84200000-7f5e85200000 rw-p 00000000 00:00 0 "));
        assertEquals(QemuGuest.RamMatch.LARGEST_ANONYMOUS, twoExact.foundBy());
        assertEquals(0x7f5e84200000L, twoExact.ram().start(), "the lowest of equal candidates");
    }

    @Test
    void noLargeEnoughAnonymousMappingIsNotFoundWithTheReason() throws IOException {
        QemuGuest guest = locate(parse("qemu-system-x86_64", "-m", "8G"), tcgMaps());
        assertEquals(QemuGuest.RamMatch.NOT_FOUND, guest.foundBy());
        assertEquals("no private anonymous rw-p mapping of at least 8589934592 bytes (the RAM size)", guest.problem());
    }

    @Test
    void ramSplitOverSeveralNumaBackendsIsNotLocated() {
        QemuCommandLine commandLine = parse("qemu-system-x86_64", "-m", "2G",
                "-object", "memory-backend-ram,id=m0,size=1G", "-object", "memory-backend-ram,id=m1,size=1G",
                "-numa", "node,nodeid=0,memdev=m0", "-numa", "node,nodeid=1,memdev=m1");
        assertTrue(commandLine.problem().startsWith("its RAM is split over 2 NUMA memory backends"), commandLine.problem());
    }

    @Test
    void onlySystemEmulatorsAreQemuGuests() {
        assertTrue(QemuCommandLine.isQemu("/usr/bin/qemu-system-x86_64"));
        assertTrue(QemuCommandLine.isQemu("/usr/libexec/qemu-kvm"));
        assertTrue(QemuCommandLine.parse(List.of("/usr/bin/qemu-img", "convert")).isEmpty());
        assertTrue(QemuCommandLine.parse(List.of("java", "-m", "256")).isEmpty());
        assertTrue(QemuCommandLine.parse(new byte[0]).isEmpty());
    }
}
