/**
 * Internal: every call Samepage makes to the Linux kernel through FFM ({@link java.lang.foreign.Linker}
 * downcalls) lives in this package, and only here. Not an API: the module exports it only to
 * Samepage's own modules, and it may change without notice. Run Java with
 * {@code --enable-native-access=io.samepage.linux} (on the module path) or
 * {@code --enable-native-access=ALL-UNNAMED} (on the class path).
 *
 * <p>Each class below says, at each call site, why its arguments are safe; the sections that follow
 * are the reasoning per class, written when each lived beside its one user (the engine's frame pool,
 * host mode and KVM, the CLI, the benchmarks).
 *
 * <h2>The frame pool's memory: NativeMemory, DiscardList</h2>
 * <p>{@link io.samepage.linux.NativeMemory} wraps four libc calls through FFM
 * ({@link java.lang.foreign.Linker} downcalls):
 * <ul>
 *   <li>{@code mmap}: reserves the frame pool's region as private anonymous memory with
 *       {@code MAP_NORESERVE}, so frames nobody has touched cost neither RAM nor commit charge;</li>
 *   <li>{@code munmap}: returns the region when its owning arena closes;</li>
 *   <li>{@code madvise(MADV_DONTNEED)}: drops the physical pages of a freed frame, so the process RSS
 *       falls and the frame reads as zeros the next time it is touched;</li>
 *   <li>{@code getpagesize}: checked once, because the pool's 4 KiB frames must be whole host pages.</li>
 * </ul>
 * {@link io.samepage.linux.DiscardList} adds {@code pidfd_open} and
 * {@code process_madvise(MADV_DONTNEED)}: up to 512 ranges of the region dropped in one call, with
 * one madvise per range where the kernel (before 6.13) or libc refuses.
 *
 * <h3>Why each call is safe</h3>
 * <ul>
 *   <li>The calls are linked only on Linux on 64-bit architectures that use the generic
 *       {@code mmap} flag values (x86-64, AArch64, RISC-V 64) with 4 KiB host pages;
 *       {@link io.samepage.linux.NativeMemory#available()} is false everywhere else and
 *       callers fall back to {@link java.lang.foreign.Arena#allocate(long, long)}.</li>
 *   <li>{@code mmap} is called with a null hint, so it never replaces an existing mapping. Its result is
 *       checked against {@code MAP_FAILED} before it becomes a segment, and that segment is bound to the
 *       caller's arena: after the arena closes every access throws instead of touching unmapped memory.</li>
 *   <li>{@code munmap} runs only as that arena's cleanup action, exactly once, after the JDK has made
 *       sure no thread still accesses the segment (a shared arena's close).</li>
 *   <li>{@code madvise} receives a slice of a live segment: the bounds are checked by
 *       {@link java.lang.foreign.MemorySegment#asSlice(long, long)} and the downcall keeps the arena alive
 *       for its duration, so it can never discard memory the region does not own.</li>
 *   <li>{@code process_madvise} receives raw addresses in an iovec array, each bounds-checked against
 *       the region when it is added. The array itself is allocated in the region's arena and passed as a
 *       segment, so the downcall keeps that arena alive as it does for {@code madvise}: a close during
 *       the call fails instead of unmapping the region under it, and a list whose region is closed
 *       throws before the kernel sees an address that another mapping may have taken. The pidfd names
 *       this process only.</li>
 * </ul>
 *
 * <p>No segment made here reaches another package's public API except as
 * {@code FramePool.memory()}, the region the pool hands to the engine by design.
 *
 * <h2>Host mode and KVM: ProcessVmReader, ZeroPageProbe, KvmCalls, MemfdCalls</h2>
 * <h3>Reading another process: {@link io.samepage.linux.ProcessVmReader}</h3>
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
 * <h3>Finding the zero pages: {@link io.samepage.linux.ZeroPageProbe}</h3>
 * {@code mmap} of 4 MiB read-only private anonymous memory with a null hint (it never replaces a
 * mapping), {@code madvise} inside it, one byte read from each of two pages (the kernel maps its zero
 * pages, allocating nothing), {@code munmap} of exactly what {@code mmap} returned, after the last
 * access. The frame numbers come from this process's own pagemap.
 *
 * <h3>KVM and memfd frames: {@link io.samepage.linux.KvmCalls},
 * {@link io.samepage.linux.MemfdCalls}</h3>
 * Both go through one set of C library downcalls (package-private {@code Libc}, errno captured by the
 * linker), which pass arguments through; each caller says why its arguments are safe. The KVM ioctls
 * pass structs allocated at exactly the size {@code <linux/kvm.h>} gives (checked on this machine with
 * a C program: region 32 bytes, dirty log 16, regs 144, sregs 312), alive for the call; numeric
 * arguments touch no memory. {@code struct kvm_run} is mapped from the vCPU fd and read through a
 * bounds-checked segment ({@link io.samepage.linux.KvmRunPage}). The one call that can
 * destroy memory it does not own is {@code mmap(MAP_FIXED)}: {@code MemfdCalls} takes a reservation's
 * segment and an offset, checks that the pages lie inside it and that it is alive, and computes the
 * address itself, so it can only replace pages of a range it reserved. Every mapping made here belongs
 * to an arena whose cleanup unmaps exactly that range after the arena has invalidated its segments.
 *
 * <p>All of these classes link only on Linux on 64-bit architectures with the generic {@code mmap}
 * flag values (x86-64, AArch64, RISC-V 64), and {@code KvmCalls} knows only x86-64's KVM structs.
 * Elsewhere, or with native access denied, the reader reports why it is unavailable, the probe finds
 * nothing, and KVM and memfd frames refuse as unavailable, saying why.
 *
 * <h2>Terminals, AnonymousMemory, ClockTicks</h2>
 * <p>{@link io.samepage.linux.Terminals} asks libc's {@code isatty} whether a standard
 * stream is a terminal, so a progress bar goes to stderr only when a person watches it, whatever
 * stdin and stdout are. ({@code System.console()} answers for stdin and stdout, not for stderr: it
 * would draw a bar into {@code 2>log} and hide it behind {@code | tee}.)
 *
 * <h3>Why the call is safe</h3>
 * {@code int isatty(int fd)} takes a plain integer and returns one: no pointer crosses the boundary,
 * nothing is allocated or freed, and a descriptor that is closed or not a terminal just gives 0. It is
 * linked once, from the C library's default lookup; where it is missing or native access is denied
 * the class falls back to {@code System.console() != null}.
 *
 * <p>{@link io.samepage.linux.AnonymousMemory} maps private anonymous memory ({@code mmap}),
 * advises it ({@code madvise}: {@code MADV_MERGEABLE} for kernel KSM, {@code MADV_NOHUGEPAGE}) and unmaps
 * it, for the density suite's KSM helper process; {@link io.samepage.linux.ClockTicks} asks
 * {@code sysconf(_SC_CLK_TCK)} for the unit of {@code /proc/PID/stat}'s CPU times. The mapping is made by
 * the kernel at an address it picks, used only within its length, and unmapped once by its owner; errno
 * is captured with {@code Linker.Option.captureCallState} and reported.
 *
 * <h2>The page cache: PageCache</h2>
 * <p>{@link io.samepage.linux.PageCache} wraps six libc calls through FFM
 * ({@link java.lang.foreign.Linker} downcalls), to make an image "cold" for the operating system's page
 * cache before a benchmark loads it, and to measure how cold it really is:
 * <ul>
 *   <li>{@code open(O_RDONLY | O_CLOEXEC)} and {@code close}: a file descriptor for the two calls below,
 *       held only for their duration;</li>
 *   <li>{@code posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED)}: drops the file's clean, unmapped pages from
 *       the page cache. It is advice: pages that some process maps (every running JVM maps its own
 *       {@code lib/modules}) or that are dirty stay, which is why residency is measured afterwards;</li>
 *   <li>{@code mmap(PROT_READ, MAP_SHARED)}, {@code mincore} and {@code munmap}: how many of the file's
 *       pages are in the page cache, without reading (and so without faulting in) any of them.</li>
 * </ul>
 * Rejected: writing 1 to {@code /proc/sys/vm/drop_caches}. It needs root and empties the page cache of
 * the whole machine, which slows every other process on a shared host and still keeps mapped pages;
 * {@code posix_fadvise} touches the image's files only.
 *
 * <h3>Why each call is safe</h3>
 * <ul>
 *   <li>The calls are linked only on Linux on 64-bit architectures whose {@code open}, {@code mmap} and
 *       {@code posix_fadvise} constants are the generic ones (x86-64, AArch64, RISC-V 64) with 4 KiB
 *       host pages; {@link io.samepage.linux.PageCache#available()} is false everywhere
 *       else, and the benchmark says so instead of loading.</li>
 *   <li>Every path is passed as a NUL-terminated copy in a confined arena that outlives the call.</li>
 *   <li>A descriptor is used only between a successful {@code open} and its {@code close}, in one
 *       method, and closed exactly once, in a {@code finally}.</li>
 *   <li>{@code mmap} gets a null hint (it never replaces an existing mapping), read-only protection and
 *       a length equal to the file's size at the moment of the call; its result is checked against
 *       {@code MAP_FAILED}, and nothing ever dereferences the mapping: it is only passed to
 *       {@code mincore}, whose output vector is a confined allocation of exactly one byte per page,
 *       and then unmapped with the same address and length, once, in a {@code finally}.</li>
 * </ul>
 */
package io.samepage.linux;
