/**
 * Internal: every call Samepage makes to the Linux kernel through FFM ({@link java.lang.foreign.Linker}
 * downcalls) lives in this package, and only here. Not an API: the module exports it only to
 * Samepage's own modules, and it may change without notice. Run Java with
 * {@code --enable-native-access=io.samepage.linux} (on the module path) or
 * {@code --enable-native-access=ALL-UNNAMED} (on the class path).
 *
 * <h2>One binding table: Libc</h2>
 * <p>Every C library function is bound in one package-private class, {@code Libc}, once, and no other
 * class reaches the linker ({@code OneBindingTableTest} checks the sources). The classes below are its
 * callers: each says at its call sites why its arguments are safe, and {@code Libc} says, beside each
 * downcall, what it requires of them. The table holds:
 * <ul>
 *   <li>{@code open}, {@code close}, {@code ioctl}, {@code memfd_create}, {@code ftruncate},
 *       {@code fallocate}, {@code fstat}: KVM and memfd frames, the page cache;</li>
 *   <li>{@code mmap}, {@code munmap}, {@code mprotect}, {@code madvise}, {@code mincore},
 *       {@code getpagesize}: every mapping the package makes, and the 4 KiB page check;</li>
 *   <li>{@code pidfd_open}, {@code process_madvise}: the frame pool's batched discard;</li>
 *   <li>{@code posix_fadvise}, {@code sysconf}, {@code isatty}: the page cache, clock ticks, terminals;</li>
 *   <li>{@code socket}, {@code bind}, {@code sendto}, {@code recv}: Unix datagram sockets
 *       ({@link io.samepage.linux.UnixDatagram}), which the JDK lacks, for systemd's readiness
 *       notification ({@link io.samepage.linux.SystemdNotify});</li>
 *   <li>{@code renameat2}: the atomic exchange of two paths ({@link io.samepage.linux.Renames}), which the
 *       JDK lacks, for the daemon's counters file; it says why its call is safe.</li>
 * </ul>
 *
 * <p>Each wrapper returns the call's result or {@code -errno}, with errno captured by the linker as the
 * call returns ({@code posix_fadvise} returns its error number itself; {@code getpagesize},
 * {@code sysconf} and {@code isatty} report no errno). Two argument shapes, chosen per function:
 * <ul>
 *   <li>a segment wherever the memory must outlive the call: the downcall keeps the segment's arena
 *       alive while it runs, so a concurrent close fails instead of unmapping memory under the kernel:
 *       {@code madvise}'s range (it advises exactly its segment, nothing beyond), {@code process_madvise}'s
 *       iovecs (allocated in the region's arena for this reason), paths, names and structs;</li>
 *   <li>a {@code long} address for mappings a caller made itself and owns by number ({@code mmap}'s
 *       result, {@code munmap}, {@code mprotect}, {@code mincore}'s range), where no arena could be held:
 *       an arena's cleanup action receives a global-scoped segment anyway.</li>
 * </ul>
 * {@code ioctl} is bound in both shapes, because its third argument is a pointer for some requests and
 * a number for others.
 *
 * <p>Each function is bound the first time a caller asks for it, so a process links only what it
 * calls. Every binding may be missing, each for its own reason, recorded for the caller's message: the
 * platform (all but {@code isatty} need Linux on x86-64, AArch64 or RISC-V 64, whose {@code mmap},
 * {@code open} and {@code madvise} constants {@code Abi} holds), a symbol this C library lacks
 * ({@code pidfd_open} and {@code process_madvise} before glibc 2.36: only the batched discard falls
 * back), or native access denied (all of them). Each class asks for exactly the functions it calls
 * and keeps its own fallback, below.
 *
 * <p>Wrappers use the calling thread's errno buffer; {@code process_madvise}, which its caller calls in
 * a loop, takes the caller's own, so a batch looks nothing up.
 *
 * <h2>The frame pool's memory: NativeMemory, DiscardList</h2>
 * <p>{@link io.samepage.linux.NativeMemory} makes five kinds of C library call:
 * <ul>
 *   <li>{@code mmap}: reserves the frame pool's region as private anonymous memory with
 *       {@code MAP_NORESERVE}, so frames nobody has touched cost neither RAM nor commit charge;</li>
 *   <li>{@code munmap}: returns the region when its owning arena closes, and, for a region placed on a
 *       2 MiB block ({@link io.samepage.linux.NativeMemory#reserve(long, long, java.lang.foreign.Arena)}),
 *       trims the spare address space mapped around it;</li>
 *   <li>{@code madvise(MADV_DONTNEED)}: drops the physical pages of a freed frame, so the process RSS
 *       falls and the frame reads as zeros the next time it is touched;</li>
 *   <li>{@code madvise(MADV_NOHUGEPAGE)}: keeps the region on 4 KiB pages where the host's transparent
 *       huge pages are {@code always}, since dropping one frame of a huge page frees nothing until the
 *       kernel runs short of memory;</li>
 *   <li>{@code getpagesize}: checked once, because the pool's 4 KiB frames must be whole host pages.</li>
 * </ul>
 * {@link io.samepage.linux.DiscardList} adds {@code pidfd_open} and
 * {@code process_madvise(MADV_DONTNEED)}: up to 512 ranges of the region dropped in one call, with
 * one madvise per range where the kernel (before 6.13) or libc refuses.
 *
 * <h3>Why each call is safe</h3>
 * <ul>
 *   <li>The calls are bound only on Linux on 64-bit architectures that use the generic
 *       {@code mmap} flag values (x86-64, AArch64, RISC-V 64) with 4 KiB host pages;
 *       {@link io.samepage.linux.NativeMemory#available()} is false everywhere else and
 *       callers fall back to {@link java.lang.foreign.Arena#allocate(long, long)}.</li>
 *   <li>{@code mmap} is called with a null hint, so it never replaces an existing mapping. Its result is
 *       checked against {@code MAP_FAILED} before it becomes a segment, and that segment is bound to the
 *       caller's arena: after the arena closes every access throws instead of touching unmapped memory.</li>
 *   <li>{@code munmap} runs only as that arena's cleanup action, exactly once, after the JDK has made
 *       sure no thread still accesses the segment (a shared arena's close); or, to trim a block-placed
 *       region, on the spare pages around it before any segment names them, inside what {@code mmap}
 *       just returned.</li>
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
 * <h2>Host mode and KVM: ZeroPageProbe, KvmCalls, MemfdCalls</h2>
 * Host mode reads other processes through {@code /proc/PID/pagemap} and {@code /proc/PID/mem} with the
 * JDK's file channels, not here: {@code process_vm_readv}, which it used before, pins each page it
 * copies read-only, and the kernel gives a read-only pin an exclusive copy of a KSM page first, so every
 * read undid kernel KSM's merges.
 *
 * <h3>Finding the zero pages: {@link io.samepage.linux.ZeroPageProbe}</h3>
 * {@code mmap} of 4 MiB read-only private anonymous memory with a null hint (it never replaces a
 * mapping), {@code madvise} inside it, one byte read from each of two pages (the kernel maps its zero
 * pages, allocating nothing), {@code munmap} of exactly what {@code mmap} returned, after the last
 * access. The frame numbers come from this process's own pagemap.
 *
 * <h3>KVM and memfd frames: {@link io.samepage.linux.KvmCalls},
 * {@link io.samepage.linux.MemfdCalls}</h3>
 * Both call {@code Libc}'s wrappers, which pass arguments through; each caller says why its arguments
 * are safe. The KVM ioctls pass structs allocated at exactly the size {@code <linux/kvm.h>} gives
 * (checked on this machine with a C program: region 32 bytes, dirty log 16, regs 144, sregs 312), alive
 * for the call; numeric arguments touch no memory. {@code struct kvm_run} is mapped from the vCPU fd and read through a
 * bounds-checked segment ({@link io.samepage.linux.KvmRunPage}). The one call that can
 * destroy memory it does not own is {@code mmap(MAP_FIXED)}: {@code MemfdCalls} takes a reservation's
 * segment and an offset, checks that the pages lie inside it and that it is alive, and computes the
 * address itself, so it can only replace pages of a range it reserved ({@code reserveAgain} too, which
 * puts a reservation back after a refused remap). Where a range may have holes that another mapping of
 * this process could have taken, {@code reserveIfFree} reserves them with {@code MAP_FIXED_NOREPLACE},
 * which replaces nothing. Every mapping made here belongs to an arena whose cleanup unmaps exactly that
 * range after the arena has invalidated its segments; a range with such holes is instead unmapped in
 * parts around them ({@code unmap}), and its arena is never closed.
 *
 * <p>All of these classes call only on Linux on 64-bit architectures with the generic {@code mmap}
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
 * nothing is allocated or freed, and a descriptor that is closed or not a terminal just gives 0.
 * {@code Libc} binds it on every platform, not only Linux; where it is missing or native access is
 * denied the class falls back to {@code System.console() != null}.
 *
 * <p>{@link io.samepage.linux.AnonymousMemory} maps private anonymous memory ({@code mmap}),
 * advises it ({@code madvise}: {@code MADV_MERGEABLE} for kernel KSM, {@code MADV_NOHUGEPAGE}) and unmaps
 * it, for the density suite's KSM helper process; {@link io.samepage.linux.ClockTicks} asks
 * {@code sysconf(_SC_CLK_TCK)} for the unit of {@code /proc/PID/stat}'s CPU times. The mapping is made by
 * the kernel at an address it picks, used only within its length, and unmapped once by its owner; errno
 * is reported. Where {@code mmap}, {@code madvise} or {@code munmap} is unbound, {@code map} refuses with
 * the reason; where {@code sysconf} is, the clock ticks are Linux's {@code USER_HZ}, 100.
 *
 * <h2>The page cache: PageCache</h2>
 * <p>{@link io.samepage.linux.PageCache} makes six C library calls (and checks {@code getpagesize}), to
 * make an image "cold" for the operating system's page cache before a benchmark loads it, and to
 * measure how cold it really is:
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
 *   <li>The calls are bound only on Linux on 64-bit architectures whose {@code open}, {@code mmap} and
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
