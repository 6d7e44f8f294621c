package io.samepage.kvm;

import io.samepage.linux.KvmCalls;
import io.samepage.linux.KvmRunPage;
import java.lang.foreign.Arena;
import java.util.function.IntUnaryOperator;

/**
 * One virtual CPU of a {@link KvmVm}: set its start state, run it, handle its exit, run it again.
 *
 * <p>Not thread safe: one thread runs a vCPU; {@link #run()} blocks that thread while the guest runs.
 * {@link #close()} may come from another thread only after the last run returned.
 */
public final class Vcpu implements AutoCloseable {

    private final int id;
    private final int fd;
    private final Arena arena;
    private final KvmRunPage runPage;
    /** {@code KVM_RUN} on a vCPU fd, 0 or {@code -errno}: {@link KvmCalls#run}, or a test's stand-in for the kernel. */
    private final IntUnaryOperator kvmRun;
    private boolean closed;

    private Vcpu(int id, int fd, Arena arena, KvmRunPage runPage, IntUnaryOperator kvmRun) {
        this.id = id;
        this.fd = fd;
        this.arena = arena;
        this.runPage = runPage;
        this.kvmRun = kvmRun;
    }

    /** vCPU {@code id} of fd {@code fd}, its {@code kvm_run} mapped ({@code mmapSize} bytes); it owns the fd. */
    static Vcpu mapped(int id, int fd, int mmapSize) {
        return mapped(id, fd, mmapSize, KvmCalls::run);
    }

    /**
     * {@link #mapped(int, int, int)} running through {@code kvmRun} instead of the ioctl: a test maps a
     * file of its own as the {@code kvm_run} page and plays the kernel's part, with no {@code /dev/kvm}.
     */
    static Vcpu mapped(int id, int fd, int mmapSize, IntUnaryOperator kvmRun) {
        Arena arena = Arena.ofShared();
        KvmRunPage runPage = KvmCalls.mapRunPage(fd, mmapSize, arena);
        if (runPage == null) {
            arena.close();
            KvmCalls.close(fd);
            throw new KvmException(KvmException.Kind.REFUSED, "mapping vCPU " + id + "'s kvm_run failed");
        }
        return new Vcpu(id, fd, arena, runPage, kvmRun);
    }

    public int id() {
        return id;
    }

    /**
     * Puts the vCPU in 16-bit real mode at {@code 0000:ip}: code segment base and selector 0,
     * instruction pointer {@code ip}, flags cleared. The data segments keep their reset base 0, so guest
     * physical addresses below 64 KiB are reachable by offset alone.
     */
    public void setRealMode(int ip) {
        checkOpen();
        if (ip < 0 || ip > 0xFFFF) {
            throw new IllegalArgumentException("a real-mode entry offset is 0 to 0xFFFF, not " + ip);
        }
        int result = KvmCalls.setRealMode(fd, ip);
        if (result < 0) {
            throw KvmException.refused("KVM_SET_SREGS/KVM_SET_REGS (vCPU " + id + ")", result);
        }
    }

    /**
     * Runs the guest until it exits to user space and returns why. A signal that interrupts the run
     * ({@code EINTR}) is not an exit: the run resumes. An {@code EFAULT} is the guest touching memory
     * the host mapping cannot give it, returned as {@link VcpuExit.MemoryFault}: with the address only if
     * KVM reported a memory-fault exit on this run, never one left in {@code kvm_run} by an earlier run.
     *
     * @throws KvmException {@link KvmException.Kind#HARDWARE_MEMORY_ERROR} if {@code KVM_RUN} failed with
     *         {@code EHWPOISON}, the other errno a memory-fault exit comes with: a hardware memory error in
     *         the host page behind the access, named by guest physical address if KVM reported it on this
     *         run. Not a {@link VcpuExit.MemoryFault}: running again faults again, and breaking sharing
     *         (what {@link MappedGuest#handleExit} does for one) would copy the poisoned frame. (Where KVM
     *         finds a poisoned page of a slot like this module's, host memory by address, x86 KVM signals
     *         the vCPU thread with {@code SIGBUS} instead, which does not reach this method.)
     *         {@link KvmException.Kind#REFUSED} for any other error of {@code KVM_RUN}
     */
    public VcpuExit run() {
        checkOpen();
        int result;
        do {
            // KVM writes exit_reason only for an exit it reports: an EFAULT that is not a memory-fault
            // exit would leave an earlier run's there, an earlier memory fault's address with it.
            runPage.clearExitReason();
            result = kvmRun.applyAsInt(fd);
        } while (result == -KvmCalls.EINTR);
        boolean annotated = runPage.exitReason() == KvmCalls.EXIT_MEMORY_FAULT;
        if (result == -KvmCalls.EFAULT) {
            return annotated ? new VcpuExit.MemoryFault(runPage.memoryFaultGpa(), runPage.memoryFaultSize(),
                    runPage.memoryFaultFlags()) : new VcpuExit.MemoryFault(-1, 0, 0);
        }
        if (result == -KvmCalls.EHWPOISON) {
            throw KvmException.hardwareMemoryError("KVM_RUN (vCPU " + id + ")", KvmCalls.EHWPOISON,
                    annotated ? runPage.memoryFaultGpa() : -1, annotated ? runPage.memoryFaultSize() : 0);
        }
        if (result < 0) {
            throw KvmException.refused("KVM_RUN (vCPU " + id + ")", result);
        }
        int reason = runPage.exitReason();
        return switch (reason) {
            case KvmCalls.EXIT_IO -> new VcpuExit.Io(runPage.ioPort(), runPage.ioSize(), runPage.ioDirection() == 1,
                    runPage.ioCount(), runPage.ioData());
            case KvmCalls.EXIT_MMIO -> new VcpuExit.Mmio(runPage.mmioPhysAddr(), runPage.mmioIsWrite(),
                    runPage.mmioData());
            case KvmCalls.EXIT_HLT -> new VcpuExit.Hlt();
            case KvmCalls.EXIT_SHUTDOWN -> new VcpuExit.Shutdown();
            case KvmCalls.EXIT_FAIL_ENTRY -> new VcpuExit.FailEntry(runPage.failEntryReason());
            case KvmCalls.EXIT_INTERNAL_ERROR -> new VcpuExit.InternalError(runPage.internalSuberror());
            default -> new VcpuExit.Other(reason);
        };
    }

    @Override
    public synchronized void close() {
        if (!closed) {
            closed = true;
            arena.close();
            KvmCalls.close(fd);
        }
    }

    private void checkOpen() {
        if (closed) {
            throw new IllegalStateException("vCPU " + id + " is closed");
        }
    }
}
