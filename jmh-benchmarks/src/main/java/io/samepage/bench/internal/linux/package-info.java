/**
 * Internal: the only code in the benchmarks that calls the operating system. Not an API; only
 * {@code io.samepage.bench} uses it, and it may change without notice.
 *
 * <p>{@link io.samepage.bench.internal.linux.PageCache} wraps six libc calls through FFM
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
 * <h2>Why each call is safe</h2>
 * <ul>
 *   <li>The calls are linked only on Linux on 64-bit architectures whose {@code open}, {@code mmap} and
 *       {@code posix_fadvise} constants are the generic ones (x86-64, AArch64, RISC-V 64) with 4 KiB
 *       host pages; {@link io.samepage.bench.internal.linux.PageCache#available()} is false everywhere
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
package io.samepage.bench.internal.linux;
