package io.samepage.linux;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * A vCPU's {@code struct kvm_run}, mapped from its fd: the exit the last {@code KVM_RUN} returned.
 * Offsets (x86-64, checked against {@code <linux/kvm.h>}): {@code exit_reason} u32 at 8; the exit's
 * union at 32: {@code io} (direction u8, size u8, port u16, count u32, data_offset u64), {@code mmio}
 * (phys_addr u64, data[8], len u32 at 48, is_write u8 at 52), {@code fail_entry} (reason u64),
 * {@code internal} (suberror u32), {@code memory_fault} (flags u64, gpa u64, size u64).
 *
 * <p>Reads are bounds checked against the mapping's size, so a corrupt {@code data_offset} throws
 * rather than reading outside it. Not thread safe: read, and {@code exit_reason} cleared, by the thread
 * that runs the vCPU, between runs.
 */
public final class KvmRunPage {

    private static final long EXIT_REASON = 8;
    private static final long UNION = 32;

    private final MemorySegment run;

    KvmRunPage(MemorySegment run) {
        this.run = run;
    }

    public int exitReason() {
        return run.get(ValueLayout.JAVA_INT, EXIT_REASON);
    }

    /**
     * Writes {@link KvmCalls#EXIT_UNKNOWN} into {@code exit_reason}: done before each {@code KVM_RUN}, so
     * that afterwards a reason KVM did not write on that run cannot pass for one it did. KVM writes
     * {@code exit_reason} only for an exit it reports, and after an error return the field may be left
     * from an earlier run (api.rst, {@code KVM_EXIT_MEMORY_FAULT}: "stale/undefined"). Safe: the field is
     * output only. x86's {@code kvm_arch_vcpu_ioctl_run} (as read in a recent tree) reads the page's input
     * fields on entry, not {@code exit_reason}, and its run loop ({@code vcpu_run}) writes this same value
     * first; some errors it returns come from before that loop, the field untouched.
     */
    public void clearExitReason() {
        run.set(ValueLayout.JAVA_INT, EXIT_REASON, KvmCalls.EXIT_UNKNOWN);
    }

    /** {@code io.direction}: 0 in, 1 out. */
    public int ioDirection() {
        return run.get(ValueLayout.JAVA_BYTE, UNION) & 0xFF;
    }

    /** {@code io.size}: bytes per transfer, 1, 2 or 4. */
    public int ioSize() {
        return run.get(ValueLayout.JAVA_BYTE, UNION + 1) & 0xFF;
    }

    public int ioPort() {
        return run.get(ValueLayout.JAVA_SHORT_UNALIGNED, UNION + 2) & 0xFFFF;
    }

    /** {@code io.count}: transfers (more than one for {@code rep outs}). */
    public int ioCount() {
        return run.get(ValueLayout.JAVA_INT_UNALIGNED, UNION + 4);
    }

    /** The {@code size * count} data bytes of an IO exit, which the kernel places inside this mapping. */
    public byte[] ioData() {
        long offset = run.get(ValueLayout.JAVA_LONG_UNALIGNED, UNION + 8);
        long length = (long) ioSize() * ioCount();
        return run.asSlice(offset, length).toArray(ValueLayout.JAVA_BYTE);
    }

    public long mmioPhysAddr() {
        return run.get(ValueLayout.JAVA_LONG_UNALIGNED, UNION);
    }

    /** The {@code len} (at most 8) data bytes of an MMIO exit. */
    public byte[] mmioData() {
        int length = Math.min(8, run.get(ValueLayout.JAVA_INT_UNALIGNED, UNION + 16));
        return run.asSlice(UNION + 8, length).toArray(ValueLayout.JAVA_BYTE);
    }

    public boolean mmioIsWrite() {
        return run.get(ValueLayout.JAVA_BYTE, UNION + 20) != 0;
    }

    /** {@code fail_entry.hardware_entry_failure_reason}. */
    public long failEntryReason() {
        return run.get(ValueLayout.JAVA_LONG_UNALIGNED, UNION);
    }

    /** {@code internal.suberror}. */
    public int internalSuberror() {
        return run.get(ValueLayout.JAVA_INT_UNALIGNED, UNION);
    }

    public long memoryFaultFlags() {
        return run.get(ValueLayout.JAVA_LONG_UNALIGNED, UNION);
    }

    public long memoryFaultGpa() {
        return run.get(ValueLayout.JAVA_LONG_UNALIGNED, UNION + 8);
    }

    public long memoryFaultSize() {
        return run.get(ValueLayout.JAVA_LONG_UNALIGNED, UNION + 16);
    }
}
