package io.samepage.kvm;

import java.util.HexFormat;

/**
 * Why {@link Vcpu#run()} returned: {@code struct kvm_run}'s {@code exit_reason} and its data, decoded.
 * The byte arrays are copies, owned by the record; records compare them by reference.
 *
 * <p>A guest write to a page mapped read-only (a merged guest page) comes back as {@link Mmio} with
 * {@code write} true on the kernels seen so far (KVM finds no writable host page and hands the write
 * to user space as if it were device memory), and as {@link MemoryFault} on kernels that fail the
 * access with {@code EFAULT} instead. Either way the VMM breaks sharing of that guest page, applies the
 * write if it was handed one, and runs the vCPU again.
 */
public sealed interface VcpuExit {

    /** {@code KVM_EXIT_IO}: the guest executed {@code in} or {@code out}. */
    record Io(int port, int size, boolean out, int count, byte[] data) implements VcpuExit {
        @Override
        public String toString() {
            return (out ? "Io[out" : "Io[in") + " port 0x" + Integer.toHexString(port) + ", size " + size
                    + ", count " + count + ", data " + HexFormat.of().formatHex(data) + "]";
        }
    }

    /**
     * {@code KVM_EXIT_MMIO}: a guest access to guest physical memory with no writable host page behind
     * it. For a write, {@code data} holds the bytes written, and the instruction has completed as far as
     * the guest can tell.
     */
    record Mmio(long physAddr, boolean write, byte[] data) implements VcpuExit {
        @Override
        public String toString() {
            return (write ? "Mmio[write" : "Mmio[read") + " at 0x" + Long.toHexString(physAddr) + ", data "
                    + HexFormat.of().formatHex(data) + "]";
        }
    }

    /** {@code KVM_EXIT_HLT}: the guest halted with interrupts it cannot take; running again resumes it. */
    record Hlt() implements VcpuExit {
    }

    /** {@code KVM_EXIT_SHUTDOWN}: a triple fault; the guest cannot continue. */
    record Shutdown() implements VcpuExit {
    }

    /** {@code KVM_EXIT_FAIL_ENTRY}: the CPU refused to enter the guest (an invalid guest state). */
    record FailEntry(long hardwareReason) implements VcpuExit {
    }

    /** {@code KVM_EXIT_INTERNAL_ERROR}: KVM could not emulate something ({@code KVM_INTERNAL_ERROR_*}). */
    record InternalError(int suberror) implements VcpuExit {
    }

    /**
     * A guest access the host mapping could not satisfy: {@code KVM_RUN} failed with {@code EFAULT}. (With
     * {@code EHWPOISON}, a hardware memory error, {@link Vcpu#run()} throws instead.)
     * With {@link KvmCapability#MEMORY_FAULT_INFO} the kernel says where ({@code KVM_EXIT_MEMORY_FAULT});
     * without it {@code physAddr} is -1 and {@code size} 0.
     */
    record MemoryFault(long physAddr, long size, long flags) implements VcpuExit {
    }

    /** Any other exit reason, by its {@code KVM_EXIT_*} number. */
    record Other(int exitReason) implements VcpuExit {
    }
}
