package io.samepage.kvm;

import io.samepage.linux.KvmCalls;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * A KVM virtual machine: memory slots over {@link MappedGuestMemory}, their dirty logs, and vCPUs.
 *
 * <p>A slot's guest physical pages are the guest pages of one {@code MappedGuestMemory}, in order.
 * KVM reads and writes them through the same host mappings the engine remaps, so a merge (remap
 * read-only onto a shared frame) takes effect for the running guest at once, and a guest write to a
 * merged page exits ({@link VcpuExit.Mmio} or {@link VcpuExit.MemoryFault}) instead of writing the
 * shared frame. Keep the memory open until the VM is closed.
 *
 * <p>Thread safe: slot changes and dirty-log reads are serialized on the VM; vCPUs run on their own
 * threads meanwhile. {@link #close()} closes the vCPUs it created.
 */
public final class KvmVm implements AutoCloseable {

    /** Flags of a memory slot ({@code KVM_MEM_*}). */
    public enum SlotFlag {
        /** Log guest writes: {@link #dirtyLog(int)} returns the pages written since its last call. */
        LOG_DIRTY_PAGES,
        /**
         * The whole slot is read-only to the guest; every write exits as MMIO. Needs
         * {@link KvmCapability#READONLY_MEM}. Single merged pages use a read-only host mapping instead.
         */
        READONLY
    }

    private final int fd;
    private final int vcpuMmapSize;
    private final Map<Integer, Slot> slots = new HashMap<>();
    private final List<Vcpu> vcpus = new ArrayList<>();
    private boolean closed;

    KvmVm(int fd, int vcpuMmapSize) {
        this.fd = fd;
        this.vcpuMmapSize = vcpuMmapSize;
    }

    /**
     * Makes {@code memory}'s guest pages the guest physical pages from {@code guestPhysAddr} on, as
     * slot {@code slot} (replacing the slot's flags if it exists with the same memory).
     *
     * @param guestPhysAddr page-aligned, not overlapping another slot
     */
    public synchronized void setUserMemoryRegion(int slot, long guestPhysAddr, MappedGuestMemory memory,
                                                 SlotFlag... flags) {
        checkOpen();
        if (guestPhysAddr % MappedGuestMemory.PAGE_BYTES != 0 || slot < 0) {
            throw new IllegalArgumentException("slot " + slot + " at guest physical 0x"
                    + Long.toHexString(guestPhysAddr) + ": the slot must be non-negative and the address page-aligned");
        }
        int bits = 0;
        for (SlotFlag flag : flags) {
            bits |= flag == SlotFlag.LOG_DIRTY_PAGES ? KvmCalls.MEM_LOG_DIRTY_PAGES : KvmCalls.MEM_READONLY;
        }
        int result = KvmCalls.setUserMemoryRegion(fd, slot, bits, guestPhysAddr, memory.bytes(), memory.hostAddress());
        if (result < 0) {
            throw KvmException.refused("KVM_SET_USER_MEMORY_REGION(slot " + slot + ")", result);
        }
        slots.put(slot, new Slot(memory, (bits & KvmCalls.MEM_LOG_DIRTY_PAGES) != 0));
    }

    /**
     * The guest pages of {@code slot} written since the last call (or since logging began), one bit per
     * page: page {@code i} is bit {@code i % 64} of word {@code i / 64}. Reading clears the log.
     */
    public long[] dirtyLog(int slot) {
        long[] bitmap = new long[bitmapWords(slot)];
        dirtyLog(slot, bitmap);
        return bitmap;
    }

    /** {@link #dirtyLog(int)} into {@code bitmap}, which must hold the slot's pages; allocates nothing on the heap. */
    public synchronized void dirtyLog(int slot, long[] bitmap) {
        checkOpen();
        int words = bitmapWords(slot);
        if (bitmap.length < words) {
            throw new IllegalArgumentException("slot " + slot + " needs a bitmap of " + words + " words, not "
                    + bitmap.length);
        }
        int result = KvmCalls.dirtyLog(fd, slot, bitmap);
        if (result < 0) {
            throw KvmException.refused("KVM_GET_DIRTY_LOG(slot " + slot + ")", result);
        }
    }

    /** A new vCPU with id {@code id}, in the CPU's reset state. */
    public synchronized Vcpu createVcpu(int id) {
        checkOpen();
        int vcpuFd = KvmCalls.createVcpu(fd, id);
        if (vcpuFd < 0) {
            throw KvmException.refused("KVM_CREATE_VCPU(" + id + ")", vcpuFd);
        }
        Vcpu vcpu = Vcpu.mapped(id, vcpuFd, vcpuMmapSize);
        vcpus.add(vcpu);
        return vcpu;
    }

    @Override
    public synchronized void close() {
        if (!closed) {
            closed = true;
            for (Vcpu vcpu : vcpus) {
                vcpu.close();
            }
            KvmCalls.close(fd);
        }
    }

    /** True once {@link #close} ran: no vCPU runs on its memory slots any more. */
    synchronized boolean isClosed() {
        return closed;
    }

    /** Words of the dirty bitmap of {@code slot}, which must log dirty pages. */
    private synchronized int bitmapWords(int slot) {
        Slot found = slots.get(slot);
        if (found == null) {
            throw new IllegalArgumentException("no memory slot " + slot);
        }
        if (!found.logDirty()) {
            throw new IllegalStateException("memory slot " + slot + " does not log dirty pages: set it with "
                    + "SlotFlag.LOG_DIRTY_PAGES");
        }
        return (found.memory().guestPages() + 63) / 64;
    }

    private record Slot(MappedGuestMemory memory, boolean logDirty) {
    }

    private void checkOpen() {
        if (closed) {
            throw new IllegalStateException("the VM is closed");
        }
    }
}
