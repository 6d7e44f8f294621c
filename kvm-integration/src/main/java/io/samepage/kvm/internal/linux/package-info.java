/**
 * Internal: the code in kvm-integration that calls the operating system through FFM. Not an API;
 * nothing outside {@code io.samepage.kvm} may use it, and it may change without notice. No
 * {@link java.lang.foreign.MemorySegment} made here reaches the public API: readers see pages as
 * read-only {@link java.nio.ByteBuffer}s, guests and frames as byte arrays and indexes.
 *
 * <h2>Reading another process: {@link io.samepage.kvm.internal.linux.ProcessVmReader}</h2>
 * {@code process_vm_readv(2)} copies pages of another process into one 1 MiB off-heap buffer. It is
 * safe for this process because the kernel writes only to the local {@code iovec}, which is built from
 * a bounds-checked slice of that buffer, kept alive by the reader's confined arena for the call; the
 * remote addresses are only read, in the other address space, and a bad one gives {@code EFAULT},
 * never a fault here. It is safe for the target because it neither stops nor writes it; the caller
 * passes only pages its pagemap shows present, so the copy faults nothing in. The kernel checks
 * {@code PTRACE_MODE_ATTACH_REALCREDS}: another user's process needs root or CAP_SYS_PTRACE
 * ({@code EPERM} otherwise). Each remote page is its own {@code iovec}, so a partial copy always ends
 * at a page boundary.
 *
 * <h2>Finding the zero pages: {@link io.samepage.kvm.internal.linux.ZeroPageProbe}</h2>
 * {@code mmap} of 4 MiB read-only private anonymous memory with a null hint (it never replaces a
 * mapping), {@code madvise} inside it, one byte read from each of two pages (the kernel maps its zero
 * pages, allocating nothing), {@code munmap} of exactly what {@code mmap} returned, after the last
 * access. The frame numbers come from this process's own pagemap.
 *
 * <h2>KVM and memfd frames: {@link io.samepage.kvm.internal.linux.KvmCalls},
 * {@link io.samepage.kvm.internal.linux.MemfdCalls}</h2>
 * Both go through one set of C library downcalls (package-private {@code Libc}, errno captured by the
 * linker), which pass arguments through; each caller says why its arguments are safe. The KVM ioctls
 * pass structs allocated at exactly the size {@code <linux/kvm.h>} gives (checked on this machine with
 * a C program: region 32 bytes, dirty log 16, regs 144, sregs 312), alive for the call; numeric
 * arguments touch no memory. {@code struct kvm_run} is mapped from the vCPU fd and read through a
 * bounds-checked segment ({@link io.samepage.kvm.internal.linux.KvmRunPage}). The one call that can
 * destroy memory it does not own is {@code mmap(MAP_FIXED)}: {@code MemfdCalls} takes a reservation's
 * segment and an offset, checks that the pages lie inside it and that it is alive, and computes the
 * address itself, so it can only replace pages of a range it reserved. Every mapping made here belongs
 * to an arena whose cleanup unmaps exactly that range after the arena has invalidated its segments.
 *
 * <p>All of these classes link only on Linux on 64-bit architectures with the generic {@code mmap}
 * flag values (x86-64, AArch64, RISC-V 64), and {@code KvmCalls} knows only x86-64's KVM structs.
 * Elsewhere, or with native access denied, the reader reports why it is unavailable, the probe finds
 * nothing, and KVM and memfd frames refuse as unavailable, saying why.
 */
package io.samepage.kvm.internal.linux;
