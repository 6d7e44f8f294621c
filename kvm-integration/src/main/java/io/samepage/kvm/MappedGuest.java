package io.samepage.kvm;

import io.samepage.core.DedupEngine;
import io.samepage.core.FrameBacking;
import io.samepage.core.Guest;
import io.samepage.core.MergeDomain;
import io.samepage.core.PageMapping;
import java.util.Objects;
import java.util.concurrent.atomic.AtomicLong;

/**
 * A guest of a {@link DedupEngine} held as mapped guest memory, which a KVM guest runs on: the engine's
 * frames live in a memfd ({@link #memfdBacking}), guest page {@code p} is a shared mapping of the frame
 * the engine's page table names, and the engine's scanner merges it like any other guest. This class
 * holds the engine's {@link PageMapping} for it and is the VMM's side of copy-on-write.
 *
 * <p>Use: create the engine with {@code new EngineContext().frameBacking(MappedGuest.memfdBacking("vms"))},
 * {@link #create} each guest, {@link #attach} its memory to a KVM VM slot, and pass every exit of the
 * guest's vCPUs to {@link #handleExit} before anything else. Read and write guest memory from Java
 * through {@link #guest()} only: it writes through the engine's frame window and breaks sharing first, so
 * it never faults on a read-only page.
 *
 * <p>Writes behind the engine's back: the KVM guest writes its writable pages directly. With a dirty
 * log ({@link #attach} with {@code dirtyLog}) the scanner reads the slot's log at the start of every
 * full scan and rehashes only the pages written; attached without one, every page counts as written at
 * every full scan (correct, and as costly as KSM). Before it is attached nothing but the engine writes
 * it. A guest write to a merged page exits instead
 * ({@link VcpuExit.Mmio} with the bytes here, {@link VcpuExit.MemoryFault} on other kernels):
 * {@link #handleExit} breaks sharing through the engine (a private copy, mapped writable), applies the
 * write, and the vCPU runs on.
 *
 * <p>Mapping budget: before each merge the scanner write-protects the page, which is refused once the
 * frames' {@link MappingBudget} has less than {@value #MERGE_HEADROOM_REMAPS} remaps left; from then on
 * this guest's pages are not merged, {@link #mergingStopped()} says why and how to raise
 * {@code vm.max_map_count}, and {@link #mergesRefused()} counts what was skipped. Breaks are never
 * refused: they do not add mappings in the usual case, and the headroom covers them where they do.
 *
 * <p>Thread safety: safe from any thread. The engine calls the {@link PageMapping} methods under the
 * page's lock; {@link #handleExit} runs on the vCPU's thread.
 */
public final class MappedGuest {

    /** Remaps that must still fit in the budget for a merge to start: the merge's own and breaks' room. */
    static final int MERGE_HEADROOM_REMAPS = 64;

    /**
     * Set once, by {@link #create} before it returns this (made before the engine's guest, so that nothing
     * is allocated once the guest exists); never changed after. Publish a mapped guest to other threads
     * as any object, safely.
     */
    private Guest guest;
    private Mirror mirror;
    private final AtomicLong writeExits = new AtomicLong();

    private MappedGuest() {
    }

    /** {@link #memfdBacking(String, MappingBudget)} under the host's {@link MappingBudget#host()}. */
    public static FrameBacking.Factory memfdBacking(String name) {
        return memfdBacking(name, MappingBudget.host());
    }

    /**
     * The frame backing mapped guests need: the engine's frames in a memfd named {@code name}, every
     * remap of its guests charged to {@code budget}. Pass it to {@code EngineContext.frameBacking}.
     * Creating the engine throws {@link KvmException} {@link KvmException.Kind#UNAVAILABLE} where memfds
     * cannot be used.
     */
    public static FrameBacking.Factory memfdBacking(String name, MappingBudget budget) {
        return memfdBacking(name, budget, GuestRangeCalls.KERNEL);
    }

    /** {@link #memfdBacking(String, MappingBudget)} whose guests map their pages through {@code rangeCalls}: for tests. */
    static FrameBacking.Factory memfdBacking(String name, MappingBudget budget, GuestRangeCalls rangeCalls) {
        Objects.requireNonNull(name, "name");
        Objects.requireNonNull(budget, "budget");
        return frames -> new MemfdBacking(MemfdFrames.create(name, frames, budget, rangeCalls));
    }

    /**
     * Creates guest {@code name} of {@code sizeBytes} in {@code domain}: one run of the engine's frames,
     * mapped with one kernel mapping, reading as zeros and costing no memory until written.
     *
     * <p>Whatever it throws (an {@link OutOfMemoryError} too), it leaves no guest in the engine and no
     * mapping or reserved range of the guest's memory.
     *
     * @throws KvmException {@link KvmException.Kind#UNAVAILABLE} if the engine's frames are not in a
     *                      memfd; a {@code DedupException} if the engine refuses the guest
     */
    public static MappedGuest create(DedupEngine engine, MergeDomain domain, String name, long sizeBytes) {
        if (!(engine.frameBacking() instanceof MemfdBacking backing)) {
            throw new KvmException(KvmException.Kind.UNAVAILABLE, "guest " + name + " cannot be mapped: the engine's "
                    + "frames are not in a memfd; create it with EngineContext.frameBacking(MappedGuest.memfdBacking(...))");
        }
        MemfdFrames frames = backing.frames();
        Mirror[] made = new Mirror[1];
        // Made first: once the engine's guest exists, a failure could only be undone by its destroy,
        // which on a heap that stays full runs out of heap too, and no one would hold the guest.
        MappedGuest mapped = new MappedGuest();
        Guest guest = engine.createGuest(domain, name, sizeBytes, (firstFrame, pages) -> {
            MappedGuestMemory memory = frames.mapGuest(pages);
            try {
                memory.map(0, firstFrame, pages, true);
                made[0] = new Mirror(name, memory, frames.budget());
            } catch (RuntimeException | Error e) {     // the engine never gets the mapping to take down
                closeAfter(memory, e);
                throw e;
            }
            return made[0];
        });
        mapped.guest = guest;
        mapped.mirror = made[0];
        return mapped;
    }

    /** Closes {@code memory}, which {@code failure} kept from the engine; what the close throws is suppressed in it. */
    private static void closeAfter(MappedGuestMemory memory, Throwable failure) {
        try {
            memory.close();
        } catch (RuntimeException | Error e) {
            if (e != failure) {        // one preallocated OutOfMemoryError may be both
                failure.addSuppressed(e);
            }
        }
    }

    /**
     * The memory the engine's memfd holds now (its allocated blocks): what mapped guests really cost
     * the host, every frame counted once however many guests map it.
     *
     * @throws KvmException {@link KvmException.Kind#UNAVAILABLE} if the engine's frames are not in a memfd
     */
    public static long allocatedBytes(DedupEngine engine) {
        if (!(engine.frameBacking() instanceof MemfdBacking backing)) {
            throw new KvmException(KvmException.Kind.UNAVAILABLE, "the engine's frames are not in a memfd");
        }
        return backing.frames().allocatedBytes();
    }

    /** The engine's guest: read and write its memory from Java here. */
    public Guest guest() {
        return guest;
    }

    /** The host mappings a KVM slot runs on. */
    public MappedGuestMemory memory() {
        return mirror.memory;
    }

    /**
     * Makes this guest's memory slot {@code slot} of {@code vm} at guest physical {@code guestPhysAddr},
     * logging dirty pages if {@code dirtyLog} (then the scanner rehashes only what the log names).
     */
    public void attach(KvmVm vm, int slot, long guestPhysAddr, boolean dirtyLog) {
        if (dirtyLog) {
            vm.setUserMemoryRegion(slot, guestPhysAddr, mirror.memory, KvmVm.SlotFlag.LOG_DIRTY_PAGES);
        } else {
            vm.setUserMemoryRegion(slot, guestPhysAddr, mirror.memory);
        }
        mirror.attached(vm, slot, guestPhysAddr, dirtyLog);
    }

    /**
     * Handles a copy-on-write exit of this guest's vCPU: a write ({@link VcpuExit.Mmio}) or a fault
     * ({@link VcpuExit.MemoryFault}) at a guest physical address inside this guest's slot. The write is
     * applied through {@link #guest()}, which breaks sharing first; a fault breaks sharing of its page
     * without changing its bytes, in one engine operation under the page's lock, and running the vCPU
     * again retries the access. Either is atomic with respect to other writers of the page through
     * {@link #guest()} and other vCPUs' exits.
     *
     * @return true if handled (run the vCPU again); false if the exit is not one (a device's MMIO, a read)
     */
    public boolean handleExit(VcpuExit exit) {
        switch (exit) {
            case VcpuExit.Mmio mmio when mmio.write() && inside(mmio.physAddr(), mmio.data().length) -> {
                guest.write(mmio.physAddr() - mirror.guestPhysAddr, mmio.data(), 0, mmio.data().length);
                writeExits.incrementAndGet();
                return true;
            }
            case VcpuExit.MemoryFault fault when fault.physAddr() >= 0 && inside(fault.physAddr(), 1) -> {
                breakSharing(fault.physAddr() - mirror.guestPhysAddr);
                writeExits.incrementAndGet();
                return true;
            }
            default -> {
                return false;
            }
        }
    }

    /**
     * The fault branch of {@link #handleExit}, by guest address: gives the page holding {@code address} a
     * private copy, mapped writable, without changing its bytes ({@link Guest#breakSharing}: under the
     * page's lock, storing nothing, so neither a Java writer's nor another vCPU's store can be lost). A
     * page already private (broken by another exit or a Java write since the fault) keeps its frame and
     * is made writable again (a refused mprotect after a merge's compare may have left it read-only);
     * either way the vCPU retries its store.
     */
    void breakSharing(long address) {
        guest.breakSharing(address);
    }

    /** Copy-on-write exits {@link #handleExit} handled. */
    public long writeExits() {
        return writeExits.get();
    }

    /** Null while merging this guest may go on; else why it stopped, saying how to raise the limit. */
    public String mergingStopped() {
        return mirror.mergingStopped;
    }

    /** Merges of this guest's pages skipped because the mapping budget was spent. */
    public long mergesRefused() {
        return mirror.mergesRefused.get();
    }

    /**
     * Destroys the engine's guest: unmaps its memory and frees its frames. Close its VM first: while the
     * VM it is {@linkplain #attach attached} to is open, the destroy is refused, since the VM's slot
     * would run on whatever the next guest maps at the same address.
     *
     * @throws io.samepage.core.DedupException of kind {@code HOST_REFUSED} if its memory cannot be unmapped
     *         yet ({@link MappedGuestMemory#close}) or its VM is open: the guest stays live and unchanged;
     *         destroy it again
     */
    public void destroy() {
        guest.destroy();
    }

    private boolean inside(long physAddr, int length) {
        long offset = physAddr - mirror.guestPhysAddr;
        return mirror.vm != null && offset >= 0 && offset <= guest.sizeBytes() - length;
    }

    /** The engine's {@link PageMapping} of one guest; the engine calls it with the page's stripe lock held. */
    private static final class Mirror implements PageMapping {

        private final String name;
        private final MappedGuestMemory memory;
        private final MappingBudget budget;
        private final long[] dirty;
        private final AtomicLong mergesRefused = new AtomicLong();
        private volatile String mergingStopped;
        private volatile KvmVm vm;
        private volatile int slot;
        private volatile long guestPhysAddr;
        private volatile boolean dirtyLog;

        Mirror(String name, MappedGuestMemory memory, MappingBudget budget) {
            this.name = name;
            this.memory = memory;
            this.budget = budget;
            this.dirty = new long[(memory.guestPages() + 63) / 64];
        }

        void attached(KvmVm vm, int slot, long guestPhysAddr, boolean dirtyLog) {
            this.slot = slot;
            this.guestPhysAddr = guestPhysAddr;
            this.dirtyLog = dirtyLog;
            this.vm = vm;
        }

        /**
         * A break, or a merge {@link #writeProtect} admitted: counted against the budget, never refused by
         * it. A remap the kernel refuses leaves the page on the frame it mapped, as the engine expects,
         * unless it cannot be mapped back: then it is lost ({@link MappedGuestMemory}) and fails loudly
         * until the engine's next map, write-protect or unprotect of it maps it again.
         */
        @Override
        public void map(int page, int frame, boolean writable) {
            memory.remapAdmitted(page, frame, writable);
        }

        @Override
        public boolean writeProtect(int page) {
            if (mergingStopped == null && !budget.hasRoomFor(MERGE_HEADROOM_REMAPS)) {
                mergingStopped = "guest " + name + ": " + budget.limitMessage("its page " + page);
            }
            if (mergingStopped != null) {
                mergesRefused.incrementAndGet();
                return false;
            }
            memory.protectAdmitted(page, false);
            return true;
        }

        @Override
        public void unprotect(int page) {
            memory.protectAdmitted(page, true);
        }

        /**
         * Nothing before a VM is attached; the slot's dirty log (read and cleared here, on the scanner's
         * thread) if it keeps one; otherwise false: every page counts as written.
         */
        @Override
        public boolean pagesWritten(long[] bitmap) {
            KvmVm attached = vm;
            if (attached == null) {
                return true;
            }
            if (!dirtyLog) {
                return false;
            }
            try {
                attached.dirtyLog(slot, dirty);
            } catch (IllegalStateException | KvmException e) {
                return false;       // the VM is closed or refused: count every page as written
            }
            for (int i = 0; i < dirty.length; i++) {
                bitmap[i] |= dirty[i];
            }
            return true;
        }

        /** Refused while an attached VM is open: its slot still names this memory's addresses. */
        @Override
        public void unmapAll() {
            KvmVm attached = vm;
            if (attached != null && !attached.isClosed()) {
                throw new IllegalStateException("its memory is slot " + slot + " of a KVM VM that is still open; "
                        + "close the VM first");
            }
            memory.close();
        }
    }
}
