package io.samepage.kvm;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.samepage.linux.KvmCalls;
import io.samepage.linux.MemfdCalls;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.function.IntUnaryOperator;
import org.junit.jupiter.api.Test;

/**
 * {@link Vcpu#run()} without {@code /dev/kvm}: the vCPU's {@code kvm_run} page is a mapping of a memfd,
 * and the test plays the kernel's part of {@code KVM_RUN}, writing the exit into a second mapping of the
 * same file and returning what the ioctl would.
 */
class VcpuRunTest {

    private static final int RUN_BYTES = 4096;
    private static final long EXIT_REASON = 8;
    private static final long MEMORY_FAULT_FLAGS = 32;
    private static final long MEMORY_FAULT_GPA = 40;
    private static final long MEMORY_FAULT_SIZE = 48;

    /**
     * KVM writes {@code exit_reason} only when it reports an exit; an {@code EFAULT} that is not a
     * memory-fault exit leaves the previous one there (api.rst: stale). A memory-fault exit before it
     * must not make it pass for a second one, at the first one's address.
     */
    @Test
    void aPlainEfaultAfterAMemoryFaultExitIsNotReportedAsOne() throws IOException {
        int fd = MemfdCalls.create("kvm_run", RUN_BYTES);
        assertTrue(fd >= 0, "memfd_create: " + fd);
        try (Arena arena = Arena.ofConfined();
             FileChannel file = FileChannel.open(Path.of("/proc/self/fd/" + fd), StandardOpenOption.READ,
                     StandardOpenOption.WRITE)) {
            MemorySegment run = file.map(FileChannel.MapMode.READ_WRITE, 0, RUN_BYTES, arena);
            List<IntUnaryOperator> kernel = new ArrayList<>(List.of(
                    vcpuFd -> memoryFault(run, 0x5000, 4096),
                    vcpuFd -> -KvmCalls.EFAULT,                 // writes nothing: exit_reason is stale
                    vcpuFd -> memoryFault(run, 0x7000, 4096)));
            try (Vcpu vcpu = Vcpu.mapped(0, fd, RUN_BYTES, vcpuFd -> kernel.removeFirst().applyAsInt(vcpuFd))) {
                assertEquals(new VcpuExit.MemoryFault(0x5000, 4096, 0), vcpu.run());
                assertEquals(new VcpuExit.MemoryFault(-1, 0, 0), vcpu.run(), "an EFAULT KVM did not annotate");
                assertEquals(new VcpuExit.MemoryFault(0x7000, 4096, 0), vcpu.run(), "the next annotated one is reported");
            }
        }
    }

    /**
     * A memory-fault exit comes with {@code EFAULT} or {@code EHWPOISON} (api.rst). {@code EHWPOISON} is a
     * hardware memory error in the host page behind the access: running again faults again, and breaking
     * sharing, what a {@link VcpuExit.MemoryFault} asks of {@link MappedGuest#handleExit}, would copy the
     * poisoned frame. So it is thrown, naming the guest physical address when KVM reported one on this run.
     */
    @Test
    void aHardwareMemoryErrorIsThrownNamingTheGuestPhysicalAddress() throws IOException {
        int fd = MemfdCalls.create("kvm_run", RUN_BYTES);
        assertTrue(fd >= 0, "memfd_create: " + fd);
        try (Arena arena = Arena.ofConfined();
             FileChannel file = FileChannel.open(Path.of("/proc/self/fd/" + fd), StandardOpenOption.READ,
                     StandardOpenOption.WRITE)) {
            MemorySegment run = file.map(FileChannel.MapMode.READ_WRITE, 0, RUN_BYTES, arena);
            List<IntUnaryOperator> kernel = new ArrayList<>(List.of(
                    vcpuFd -> memoryFault(run, 0x9000, 4096, KvmCalls.EHWPOISON),
                    vcpuFd -> -KvmCalls.EHWPOISON));            // not annotated: exit_reason is stale
            try (Vcpu vcpu = Vcpu.mapped(0, fd, RUN_BYTES, vcpuFd -> kernel.removeFirst().applyAsInt(vcpuFd))) {
                KvmException annotated = assertThrows(KvmException.class, vcpu::run);
                assertEquals(KvmException.Kind.HARDWARE_MEMORY_ERROR, annotated.kind(), annotated.getMessage());
                assertEquals(133, annotated.errno());
                assertTrue(annotated.getMessage().contains("guest physical 0x9000..0x9fff has an uncorrectable "
                        + "hardware error"), annotated.getMessage());

                KvmException stale = assertThrows(KvmException.class, vcpu::run);
                assertEquals(KvmException.Kind.HARDWARE_MEMORY_ERROR, stale.kind(), stale.getMessage());
                assertTrue(stale.getMessage().contains("a guest page KVM did not name"), stale.getMessage());
            }
        }
    }

    /** What KVM does for a memory-fault exit ({@code kvm_prepare_memory_fault_exit}), and the ioctl's result. */
    private static int memoryFault(MemorySegment run, long gpa, long size) {
        return memoryFault(run, gpa, size, KvmCalls.EFAULT);
    }

    /** {@link #memoryFault(MemorySegment, long, long)} that fails {@code KVM_RUN} with {@code errno}. */
    private static int memoryFault(MemorySegment run, long gpa, long size, int errno) {
        run.set(ValueLayout.JAVA_INT, EXIT_REASON, KvmCalls.EXIT_MEMORY_FAULT);
        run.set(ValueLayout.JAVA_LONG, MEMORY_FAULT_FLAGS, 0L);
        run.set(ValueLayout.JAVA_LONG, MEMORY_FAULT_GPA, gpa);
        run.set(ValueLayout.JAVA_LONG, MEMORY_FAULT_SIZE, size);
        return -errno;
    }
}
