package io.samepage.kvm;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * A one-vCPU KVM VM over mapped guest memory, running a few hand-assembled 16-bit real-mode
 * instructions: small enough to run on every KVM, including the paravirtual one of this project's
 * machines, where a stock Linux kernel hangs. Guest physical memory is {@link #PAGES} guest pages, each
 * on the frame of the same number, in slot 0 with dirty logging; the code sits at {@link #CODE}.
 */
final class RealModeGuest implements AutoCloseable {

    static final int PAGES = 16;
    static final int CODE = 0x1000;
    static final int SERIAL_PORT = 0x3F8;

    /** The first of the pages the merge tests fill alike in every guest (pages 4 to 11). */
    static final int FIRST_SHARED = 4;
    static final int SHARED_PAGES = 8;
    /** Where each guest's own id byte sits. */
    static final int ID_ADDRESS = 0x500;

    /**
     * Reads its id at {@link #ID_ADDRESS}, writes it to merged pages 4 and 6 (each exits once when
     * merged), to page 4 again (no exit: broken by then), then sends pages 4, 6 and 5 to the serial
     * port and halts.
     */
    static final byte[] WRITES_MERGED_PAGES = {
        (byte) 0xA0, 0x00, 0x05,                          // mov  0x500, %al     (the guest's id)
        (byte) 0xA2, 0x20, 0x40,                          // mov  %al, 0x4020    (merged page 4: exits)
        (byte) 0xA2, 0x20, 0x60,                          // mov  %al, 0x6020    (merged page 6: exits)
        (byte) 0xA2, 0x21, 0x40,                          // mov  %al, 0x4021    (page 4, broken: no exit)
        (byte) 0xBA, (byte) 0xF8, 0x03,                   // mov  $0x3f8, %dx
        (byte) 0xA0, 0x20, 0x40,                          // mov  0x4020, %al
        (byte) 0xEE,                                      // out  %al, (%dx)
        (byte) 0xA0, 0x20, 0x60,                          // mov  0x6020, %al
        (byte) 0xEE,                                      // out  %al, (%dx)
        (byte) 0xA0, 0x20, 0x50,                          // mov  0x5020, %al    (page 5, still merged)
        (byte) 0xEE,                                      // out  %al, (%dx)
        (byte) 0xF4,                                      // hlt
    };

    final Kvm kvm;
    final KvmVm vm;
    final MemfdFrames frames;
    final MappedGuestMemory memory;
    final Vcpu vcpu;

    /** Null if {@code /dev/kvm} can create a VM here, else why not; asked once per test run. */
    private static final String KVM_UNAVAILABLE = Kvm.unavailableReason();

    /** Skips the calling test, saying why, where {@code /dev/kvm} cannot create a VM. */
    static void assumeKvm() {
        assumeTrue(KVM_UNAVAILABLE == null, () -> "skipped: no usable KVM here: " + KVM_UNAVAILABLE);
    }

    private final boolean ownsKvmAndFrames;

    /** A guest on frames {@code 0 .. PAGES} of a memfd of its own, with {@code extraFrames} more for breaks. */
    RealModeGuest(byte[] code, int extraFrames) {
        this(Kvm.open(), MemfdFrames.create("real-mode-guest", PAGES + extraFrames), 0, code, true);
    }

    /** A guest on frames {@code firstFrame .. + PAGES} of {@code frames}, which it leaves open. */
    RealModeGuest(Kvm kvm, MemfdFrames frames, int firstFrame, byte[] code) {
        this(kvm, frames, firstFrame, code, false);
    }

    private RealModeGuest(Kvm kvm, MemfdFrames frames, int firstFrame, byte[] code, boolean ownsKvmAndFrames) {
        this.kvm = kvm;
        this.frames = frames;
        this.ownsKvmAndFrames = ownsKvmAndFrames;
        vm = kvm.createVm();
        memory = frames.mapGuest(PAGES);
        memory.map(0, firstFrame, PAGES, true);
        memory.write(CODE, code, 0, code.length);
        vm.setUserMemoryRegion(0, 0, memory, KvmVm.SlotFlag.LOG_DIRTY_PAGES);
        vcpu = vm.createVcpu(0);
        vcpu.setRealMode(CODE);
    }

    /** Runs to the next exit, which must be an {@code out} of one byte to the serial port: returns the byte. */
    int runToOut() {
        VcpuExit exit = vcpu.run();
        VcpuExit.Io io = assertInstanceOf(VcpuExit.Io.class, exit, () -> "expected an out, the guest exited " + exit);
        assertEquals(SERIAL_PORT, io.port());
        assertEquals(1, io.size());
        assertEquals(true, io.out());
        assertEquals(1, io.data().length);
        return io.data()[0] & 0xFF;
    }

    /** Runs to the next exit, which must be the guest's final {@code hlt}. */
    void runToHlt() {
        VcpuExit exit = vcpu.run();
        assertInstanceOf(VcpuExit.Hlt.class, exit, () -> "expected hlt, the guest exited " + exit);
    }

    byte[] read(long guestAddress, int length) {
        byte[] bytes = new byte[length];
        memory.read(guestAddress, bytes, 0, length);
        return bytes;
    }

    byte[] readFrame(int frame, int offset, int length) {
        byte[] bytes = new byte[length];
        frames.read(frame, offset, bytes, 0, length);
        return bytes;
    }

    @Override
    public void close() {
        vm.close();
        memory.close();
        if (ownsKvmAndFrames) {
            kvm.close();
            frames.close();
        }
    }
}
