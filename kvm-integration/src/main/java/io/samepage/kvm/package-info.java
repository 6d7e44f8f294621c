/**
 * Linux and KVM through FFM: {@code /dev/kvm} VMs over mapped guest memory, the dirty log, a memfd frame
 * pool with physical sharing, kernel KSM control and reading other processes' memory. All native
 * calls sit in one internal package ({@code io.samepage.linux}); no FFM type leaks into
 * this module's public API.
 *
 * <h2>Host mode: reading live processes</h2>
 * {@link io.samepage.kvm.ProcessMemory} reads another process's memory without disturbing it, so the
 * engine can estimate what merging would save there ({@code samepage scan --pid}, {@code --qemu}):
 * {@link io.samepage.kvm.MemoryMaps} parses {@code /proc/PID/maps} into
 * {@link io.samepage.kvm.MemoryRegion}s, {@link io.samepage.kvm.PageMapEntry} decodes
 * {@code /proc/PID/pagemap}, and only the pages pagemap shows present are copied, with
 * {@code process_vm_readv}, in batches of up to 1 MiB. A page that is not present, swapped out or
 * mapping the kernel's zero page costs the host no RAM of its own; it is counted apart and never read,
 * because reading it would fault it in. {@link io.samepage.kvm.QemuGuests} finds QEMU processes and the
 * mapping that holds each guest's RAM. What kernel KSM achieves for the same process now
 * ({@link io.samepage.kvm.KernelKsm#ksmStat}) is shown beside the estimate.
 *
 * <p>Rejected: {@code /proc/PID/mem}. It needs the same permission and is bound to the process's
 * memory like pagemap, but reads through {@code FOLL_FORCE} (it can read {@code PROT_NONE} pages) one
 * contiguous range per call; {@code process_vm_readv} takes a page list per call, so scattered
 * resident pages cost one call per megabyte, not one per run. Also rejected: stopping the target
 * (ptrace attach) for a consistent snapshot; an estimate does not need one, and a stopped VM is an
 * outage.
 *
 * <p>{@link io.samepage.kvm.HostException} is the module's one error type; reading a process fails
 * with its {@link io.samepage.kvm.ProcessScanException} kind.
 *
 * <h2>Host mode: kernel KSM</h2>
 * {@link io.samepage.kvm.KernelKsm} reads every file of {@code /sys/kernel/mm/ksm} and
 * {@code /proc/PID/ksm_stat}, and writes knobs after checking them with mm/ksm.c's own rules, in an
 * order that stops first and starts last (its class comment says why). {@link io.samepage.kvm.KsmTuner}
 * is a ksmtuned-style policy on top: it estimates what merging the mergeable processes would save
 * ({@link io.samepage.kvm.DuplicateEstimate}, reading through {@code ProcessMemory}) and stops KSM or
 * sets its rate. {@code KernelKsm} is plain file I/O, no native call;
 * kernel KSM control fails with the {@link io.samepage.kvm.KernelKsmException} kind of
 * {@link io.samepage.kvm.HostException}.
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
 * <p>Measured here (kernel 6.18, 2 cores; {@code MappedEngineTest}, {@code MergedKvmEngineGuestsTest},
 * {@code samepage kvm selftest}): three 8 MiB guests with identical content, merged by the scanner:
 * memfd 24,576 to 8,192 KiB, {@code RssShmem} 24,576 to 8,192 KiB. Four 16 MiB real-mode KVM guests
 * with identical memory (the selftest): memfd 64.0 to 16.0 MiB, {@code RssShmem} 64.0 to 16.0 MiB, host
 * frames 16,385 to 4,106 (mapped guests hold their runs, holes included); 16 guest mappings after
 * merging (256 per GiB, the merged runs being contiguous); 16 copy-on-write exits handled (4 per
 * guest), memfd 16.1 MiB after them; every byte as written. Scan work on the idle guests
 * ({@code MergedKvmEngineGuestsTest}: 4 guests of 4,096 pages, 4,087 of them not merged): a full scan
 * hashed 0 pages with the dirty log and 16,348 without it; after each guest wrote two pages, 8 with it
 * and 16,356 without.
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
 * joins neighbours only if they map contiguous file offsets with one protection. Measured on a 1 GiB
 * guest: 1 mapping unmerged; 4096 with half its pages merged in runs of 64 onto a twin guest's frames;
 * 131,674 with a random half merged onto a twin's frames at the same offsets; 262,144 (one per page)
 * with every other page merged onto one frame. {@code vm.max_map_count} is 65,530 by default, so every
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
