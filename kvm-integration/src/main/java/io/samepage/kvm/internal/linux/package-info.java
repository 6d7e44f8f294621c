/**
 * Internal: the code in kvm-integration that calls the operating system through FFM. Not an API;
 * nothing outside {@code io.samepage.kvm} may use it, and it may change without notice. No
 * {@link java.lang.foreign.MemorySegment} made here reaches the public package: readers see pages as
 * read-only {@link java.nio.ByteBuffer}s.
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
 * <p>Both classes link only on Linux on 64-bit architectures with the generic {@code mmap} flag values
 * (x86-64, AArch64, RISC-V 64). Elsewhere, or with native access denied, the reader reports why it is
 * unavailable and the probe finds nothing.
 */
package io.samepage.kvm.internal.linux;
