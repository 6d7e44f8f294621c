package io.samepage.host;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.code_intelligence.jazzer.junit.FuzzTest;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.List;
import java.util.Optional;

/**
 * Coverage-guided fuzzing of the QEMU command-line parser and of the heuristic that locates a
 * guest's RAM with it. {@link QemuCommandLine} has no error type: whatever {@code /proc/PID/cmdline}
 * holds, it answers "not QEMU" (empty) or a command line whose RAM size is positive or whose
 * {@link QemuCommandLine#problem()} says why it is unknown; {@link QemuGuests#locateRam} then finds a
 * mapping or says why not. Neither may throw.
 *
 * <p>The input is the raw bytes of a cmdline file (arguments each ending in NUL). The seeds
 * ({@code QemuCommandLineFuzzTestInputs/}) are QEMU command lines as QEMU and libvirt write them:
 * TCG with {@code -m 256}, libvirt's JSON {@code -object} on hugepages, memfd with NUMA, {@code --mem-path},
 * two NUMA backends, {@code -m} with slots, and a shell that is not QEMU. The mappings are the recorded
 * maps of a TCG guest plus a memfd and a hugepage file. In {@code ./mvnw verify} this runs for the
 * bound below (see docs/fuzzing.md).
 */
class QemuCommandLineFuzzTest {

    private static final List<MemoryRegion> REGIONS = regions();

    @FuzzTest(maxExecutions = 500_000, maxDuration = "20s")
    void anyCommandLineIsReadOrLeftOutWithoutAnException(byte[] cmdline) {
        Optional<QemuCommandLine> parsed = QemuCommandLine.parse(cmdline);
        if (parsed.isEmpty()) {
            return;
        }
        QemuCommandLine line = parsed.get();
        assertTrue(QemuCommandLine.isQemu(line.binary()), line.binary());
        if (line.problem() == null) {
            assertTrue(line.ramBytes() > 0, "RAM of " + line.ramBytes() + " bytes without a problem");
            assertEquals(line.backing() == QemuCommandLine.Backing.FILE, line.memPath() != null, line.toString());
        } else {
            assertEquals(-1, line.ramBytes(), line.toString());
        }
        QemuGuest guest = QemuGuests.locateRam(4242, line, REGIONS);
        if (guest.ram() != null) {
            assertNull(guest.problem(), guest.toString());
        } else {
            assertNotNull(guest.problem(), guest.toString());
        }
    }

    private static List<MemoryRegion> regions() {
        try {
            return MemoryMaps.parse(4242, MemoryMapsTest.resource("synthetic-qemu-tcg-256m.maps")
                    + "7f0a00000000-7f0a40000000 rw-s 00000000 00:01 2054 /memfd:memory-backend-memfd (deleted)\n"
                    + "7f0b00000000-7f0b80000000 rw-s 00000000 00:2f 77 /dev/hugepages/libvirt/qemu/1-vm1/qemu_back_mem.pc.ram.AbCd12 (deleted)\n");
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
