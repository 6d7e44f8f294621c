/**
 * Internal: the only code in dedup-core that calls the operating system. Not an API; nothing outside
 * {@code io.samepage.core} may use it, and it may change without notice.
 *
 * <p>{@link io.samepage.core.internal.linux.NativeMemory} wraps four libc calls through FFM
 * ({@link java.lang.foreign.Linker} downcalls):
 * <ul>
 *   <li>{@code mmap}: reserves the frame pool's region as private anonymous memory with
 *       {@code MAP_NORESERVE}, so frames nobody has touched cost neither RAM nor commit charge;</li>
 *   <li>{@code munmap}: returns the region when its owning arena closes;</li>
 *   <li>{@code madvise(MADV_DONTNEED)}: drops the physical pages of a freed frame, so the process RSS
 *       falls and the frame reads as zeros the next time it is touched;</li>
 *   <li>{@code getpagesize}: checked once, because the pool's 4 KiB frames must be whole host pages.</li>
 * </ul>
 * {@link io.samepage.core.internal.linux.DiscardList} adds {@code pidfd_open} and
 * {@code process_madvise(MADV_DONTNEED)}: up to 512 ranges of the region dropped in one call, with
 * one madvise per range where the kernel (before 6.13) or libc refuses.
 *
 * <h2>Why each call is safe</h2>
 * <ul>
 *   <li>The calls are linked only on Linux on 64-bit architectures that use the generic
 *       {@code mmap} flag values (x86-64, AArch64, RISC-V 64) with 4 KiB host pages;
 *       {@link io.samepage.core.internal.linux.NativeMemory#available()} is false everywhere else and
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
 */
package io.samepage.core.internal.linux;
