package io.samepage.kvm;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.BitSet;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Real KVM guests over mapped guest memory: the API, the run loop's exits, the dirty log, and a guest
 * write to a merged (read-only) page, which must exit to the VMM rather than change the shared frame.
 * Skipped, saying why, where {@code /dev/kvm} cannot create a VM.
 */
@Tag("kvm")
@Timeout(30)
class KvmTest {

    @BeforeEach
    void kvmIsUsable() {
        RealModeGuest.assumeKvm();
    }

    @Test
    void apiVersionIsTwelveAndMappedMemoryCapabilitiesArePresent() {
        try (Kvm kvm = Kvm.open()) {
            assertEquals(12, kvm.apiVersion());
            assertTrue(kvm.hasExtension(KvmCapability.USER_MEMORY));
            assertTrue(kvm.hasExtension(KvmCapability.SYNC_MMU));
            assertTrue(kvm.checkExtension(KvmCapability.NR_MEMSLOTS) > 0, "memory slots");
        }
    }

    @Test
    void realModeGuestWritesItsMemoryAndReportsOnASerialPort() {
        byte[] code = {
            (byte) 0xC6, 0x06, 0x00, 0x20, 0x5A,              // movb $0x5a, 0x2000
            (byte) 0xC7, 0x06, 0x04, 0x30, (byte) 0xEF, (byte) 0xBE, // movw $0xbeef, 0x3004
            (byte) 0xBA, (byte) 0xF8, 0x03,                   // mov  $0x3f8, %dx
            (byte) 0xB0, 0x41,                                // mov  $0x41, %al
            (byte) 0xEE,                                      // out  %al, (%dx)
            (byte) 0xF4,                                      // hlt
        };
        try (RealModeGuest guest = new RealModeGuest(code, 0)) {
            assertEquals(0x41, guest.runToOut());
            guest.runToHlt();
            assertArrayEquals(new byte[] {0x5A}, guest.read(0x2000, 1));
            assertArrayEquals(new byte[] {(byte) 0xEF, (byte) 0xBE}, guest.read(0x3004, 2));
            assertArrayEquals(new byte[] {0x5A}, guest.readFrame(2, 0, 1), "the guest wrote the frame itself");
        }
    }

    @Test
    void dirtyLogMarksExactlyThePagesTheGuestWroteAndClearsWhenRead() {
        byte[] code = {
            (byte) 0xC6, 0x06, 0x00, 0x20, 0x01,              // movb $1, 0x2000    (page 2)
            (byte) 0xC6, 0x06, (byte) 0xFE, 0x3F, 0x02,       // movb $2, 0x3ffe    (page 3)
            (byte) 0xC6, 0x06, 0x00, 0x50, 0x03,              // movb $3, 0x5000    (page 5)
            (byte) 0xBA, (byte) 0xF8, 0x03,                   // mov  $0x3f8, %dx
            (byte) 0xEE,                                      // out  %al, (%dx)
            (byte) 0xC6, 0x06, 0x23, 0x71, 0x04,              // movb $4, 0x7123    (page 7)
            (byte) 0xEE,                                      // out  %al, (%dx)
            (byte) 0xF4,                                      // hlt
        };
        try (RealModeGuest guest = new RealModeGuest(code, 0)) {
            guest.runToOut();
            assertEquals(pages(2, 3, 5), BitSet.valueOf(guest.vm.dirtyLog(0)));
            assertEquals(new BitSet(), BitSet.valueOf(guest.vm.dirtyLog(0)), "reading the log clears it");
            guest.runToOut();
            guest.runToHlt();
            long[] bitmap = new long[1];
            guest.vm.dirtyLog(0, bitmap);
            assertEquals(pages(7), BitSet.valueOf(bitmap));
        }
    }

    @Test
    void guestWriteToAMergedPageExitsAsMmioAndSeesItsByteAfterTheBreak() {
        byte[] code = {
            (byte) 0xC6, 0x06, 0x10, 0x40, 0x77,              // movb $0x77, 0x4010 (page 4, merged)
            (byte) 0xA0, 0x10, 0x40,                          // mov  0x4010, %al
            (byte) 0xBA, (byte) 0xF8, 0x03,                   // mov  $0x3f8, %dx
            (byte) 0xEE,                                      // out  %al, (%dx)
            (byte) 0xA0, 0x11, 0x40,                          // mov  0x4011, %al
            (byte) 0xEE,                                      // out  %al, (%dx)
            (byte) 0xF4,                                      // hlt
        };
        int shared = RealModeGuest.PAGES;
        int fresh = shared + 1;
        try (RealModeGuest guest = new RealModeGuest(code, 2)) {
            byte[] content = new byte[MemfdFrames.FRAME_BYTES];
            java.util.Arrays.fill(content, (byte) 0x11);
            guest.frames.write(shared, 0, content, 0, content.length);
            MappedGuestMemory other = guest.frames.mapGuest(RealModeGuest.PAGES);
            other.map(4, shared, false);
            guest.memory.map(4, shared, false);

            VcpuExit exit = guest.vcpu.run();
            VcpuExit.Mmio mmio = assertInstanceOf(VcpuExit.Mmio.class, exit,
                    () -> "a guest write to a read-only page exited as " + exit + ", not as MMIO");
            assertEquals(0x4010, mmio.physAddr());
            assertTrue(mmio.write());
            assertArrayEquals(new byte[] {0x77}, mmio.data());
            assertArrayEquals(new byte[] {0x11}, guest.readFrame(shared, 0x10, 1), "the shared frame is unchanged");

            guest.frames.copy(shared, fresh);                 // the break: a private copy, mapped writable
            guest.memory.map(4, fresh, true);
            guest.memory.write(0x4010, mmio.data(), 0, mmio.data().length);

            assertEquals(0x77, guest.runToOut(), "the guest reads back its own byte");
            assertEquals(0x11, guest.runToOut(), "and the rest of the page it had before the break");
            guest.runToHlt();
            assertArrayEquals(new byte[] {0x11}, guest.readFrame(shared, 0x10, 1));
            byte[] seen = new byte[1];
            other.read(0x4010, seen, 0, 1);
            assertArrayEquals(new byte[] {0x11}, seen, "the other guest sharing the frame is unaffected");
        }
    }

    private static BitSet pages(int... pages) {
        BitSet set = new BitSet();
        for (int page : pages) {
            set.set(page);
        }
        return set;
    }
}
