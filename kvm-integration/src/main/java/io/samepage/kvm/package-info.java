/**
 * KVM through FFM: {@code /dev/kvm} VMs over engine memory held in a memfd, with physical sharing, the
 * dirty log and a mapping budget. The native calls are in the internal {@code io.samepage.linux} module;
 * no FFM type leaks into this module's public API. Reading other processes and kernel KSM are host
 * mode's ({@code io.samepage.host}).
 *
 * <h2>Guests: KVM over mapped guest memory</h2>
 * The second way to hold guest memory (the software page table of dedup-core is the first): frames
 * live in a memfd ({@link io.samepage.kvm.MemfdFrames}), and each guest page of a
 * {@link io.samepage.kvm.MappedGuestMemory} is a {@code MAP_SHARED|MAP_FIXED} mapping of one frame,
 * inside a range reserved per guest. A merge maps a guest page read-only onto the shared frame and
 * punches the freed frame out of the memfd ({@code fallocate(PUNCH_HOLE)}), so the host's memory
 * really drops (the memfd's blocks, the process's {@code RssShmem}). A Java write to a read-only page
 * is refused, never faulted: the engine breaks sharing first (copy to a fresh frame, remap read-write).
 * A zero page needs no remap at all: punching the hole of the guest page's own frame frees it in place,
 * it reads as zeros, and the next write allocates it again.
 *
 * <h2>The engine drives mapped guests: {@link io.samepage.kvm.MappedGuest}</h2>
 * Both ways implement one guest-memory interface, dedup-core's {@code Guest}: its page table is the
 * source of truth, and the scanner does not know which way a guest is held. A mapped guest adds a
 * {@code PageMapping} (here {@code MappedGuest}'s mirror of the page table onto
 * {@code MappedGuestMemory}), which the engine calls under the page's lock whenever the page's frame or
 * writability changes, before the frame it leaves can be freed; and the engine's frames are the memfd,
 * through dedup-core's {@code FrameBacking} SPI ({@link io.samepage.kvm.MappedGuest#memfdBacking}, a
 * package-private {@code MemfdBacking}: its region is the frame window, its release a punched hole).
 * <ul>
 *   <li>Layout: a guest's pages start on one run of never-used frames, mapped with one kernel mapping;
 *       they are holes (no memory) until written, and the scanner passes holes by.</li>
 *   <li>Merge: before the full compare the scanner write-protects every page whose frame the merge
 *       would share (the visited page and, for a new pair, the candidate), so a KVM write cannot land
 *       between compare and remap; it restores writability if no merge follows. An all-zero page is
 *       not merged: its own frame is punched in place, no remap.</li>
 *   <li>Breaks: Java code writes through {@code Guest}, which copies the shared frame through the frame
 *       window and remaps the page writable first; a KVM guest's write to a merged page exits
 *       ({@code KVM_EXIT_MMIO} carrying the write, here), and {@link io.samepage.kvm.MappedGuest#handleExit}
 *       applies it through {@code Guest}. A mapped page's last mapper copies too (writing the frame in
 *       place would need a remap as well, and one that could fail after the frame left the stable
 *       index).</li>
 *   <li>Writes behind the engine's back: at the start of every full scan the scanner asks each mapping
 *       which pages were written; {@code MappedGuest} answers from the slot's KVM dirty log, or "every
 *       page" when attached without one (KSM's cost), or "none" before a VM is attached.</li>
 *   <li>Mapping budget: a merge starts only while the {@link io.samepage.kvm.MappingBudget} has room
 *       for 64 more remaps; after that the guest's merges are skipped and
 *       {@link io.samepage.kvm.MappedGuest#mergingStopped()} says why and how to raise
 *       {@code vm.max_map_count}. Breaks and restores are counted but never refused, so a guest waiting
 *       on a write exit always proceeds.</li>
 * </ul>
 *
 * <p>What this saves, measured, is in {@code docs/kvm.md}.
 *
 * <p>{@link io.samepage.kvm.Kvm} opens {@code /dev/kvm} and checks API version 12, user memory and
 * KVM's tracking of host mapping changes ({@code KVM_CAP_SYNC_MMU}), which a remap under a running
 * guest relies on. A {@link io.samepage.kvm.KvmVm} slot is a guest memory's whole range, optionally
 * with a dirty log; a {@link io.samepage.kvm.Vcpu} runs and returns a typed
 * {@link io.samepage.kvm.VcpuExit}. A guest write to a merged page cannot reach the shared frame: KVM
 * finds the host page read-only and hands the write to the VMM as MMIO (seen on this project's
 * machines), or, on other kernels, fails the run with {@code EFAULT} (a memory-fault exit). The VMM
 * breaks sharing, applies the write and runs on. The dirty log shows only writes the guest made
 * through KVM: writes from Java and writes applied after an exit are the engine's own to track.
 *
 * <p>The price is kernel mappings: a guest page remapped alone splits its mapping, and the kernel
 * joins neighbours only if they map contiguous file offsets with one protection: scattered merges
 * can cost one mapping per page (docs/kvm.md has the counts). {@code vm.max_map_count} is 65,530 by default, so every
 * remap is charged to a {@link io.samepage.kvm.MappingBudget}, which refuses with
 * {@link io.samepage.kvm.KvmException.Kind#MAPPING_LIMIT} before the limit and says how to raise it.
 *
 * <p>Known costs: reading a hole through a shared mapping allocates it (shmem has no shared zero page),
 * so a Java read or a KVM read of a never-written page costs that frame's memory, and the scanner, which
 * passes holes by until they are written, does not give it back. Without a dirty log every full scan
 * reads (so allocates, then punches again) every hole, and write-protects and restores each zero page.
 *
 * <p>Rejected: KVM's read-only slots ({@code KVM_MEM_READONLY}) for merged pages. A slot per merged
 * page costs a memslot (32,764 here) and a slot update, which stalls every vCPU of the VM; a read-only
 * host mapping costs one {@code mmap} and is seen through KVM's MMU notifiers.
 */
package io.samepage.kvm;
