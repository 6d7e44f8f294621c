/**
 * Linux and KVM through FFM: {@code /dev/kvm} VMs over mapped guest memory, the dirty log, a memfd frame
 * pool with physical sharing, kernel KSM control and reading other processes' memory. All native
 * calls sit in one internal package ({@code io.samepage.kvm.internal.linux}); no FFM type leaks into
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
 * <p>Rejected: KVM's read-only slots ({@code KVM_MEM_READONLY}) for merged pages. A slot per merged
 * page costs a memslot (32,764 here) and a slot update, which stalls every vCPU of the VM; a read-only
 * host mapping costs one {@code mmap} and is seen through KVM's MMU notifiers.
 */
package io.samepage.kvm;
