package io.samepage.linux;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * Ranges of a {@link NativeMemory#reserve reserved} region to give back to the operating system
 * together: one {@code process_madvise(pidfd_of_self, iovec[], n, MADV_DONTNEED)} call for up to
 * {@value #CAPACITY} ranges instead of one {@code madvise} per range: the kernel takes the mm lock
 * and flushes the TLB once per call, not once per range (docs/perf/engine.md has the cost per frame).
 *
 * <p>{@code process_madvise} accepts {@code MADV_DONTNEED} for the caller's own process since Linux
 * 6.13. Where the call or the advice is missing (older kernels, older libc, seccomp), the first
 * refusal switches every list to one {@code madvise} per range, with the same result. A range
 * adjacent to the previous one extends it instead of taking a new entry.
 *
 * <p>The region's arena stays open for every call: the iovec array lives in that arena and is passed to
 * {@code process_madvise} as a segment, so the downcall holds the arena (a concurrent close fails with
 * {@link IllegalStateException} instead of unmapping the region under the call), and once it is closed
 * {@link #discard} throws instead of advising addresses another mapping may have taken since.
 *
 * <p>Thread safety: single writer; each thread that discards needs its own list. Allocates nothing
 * after construction.
 */
public final class DiscardList {

    /**
     * Ranges per call: the kernel's UIO_MAXIOV. Each call costs a TLB flush, which on this project's
     * machine kind (a paravirtual guest, where the flush is a hypercall) costs about as much as freeing
     * 500 pages, so the more ranges a call carries the better (docs/perf/engine.md). How the ranges lie
     * costs more still: a whole 2 MiB block goes back for a third to under half of what a page of a partly
     * freed block costs ({@link NativeMemory#reserve(long, long, Arena)}).
     */
    public static final int CAPACITY = 1024;

    private static final long IOVEC_BYTES = 16;

    /** A pidfd of this process, or -1 where none could be opened. */
    private static final int SELF_PIDFD = openSelfPidfd();
    /** Set once the kernel refuses the batched call: from then on every range gets its own madvise. */
    private static volatile boolean batchRefused = SELF_PIDFD < 0;

    private final MemorySegment region;
    /**
     * {@code struct iovec[CAPACITY]}: {@code void *iov_base; size_t iov_len;} on 64-bit Linux. Allocated
     * in the region's arena, so passing it to the downcall keeps the region mapped for the call.
     */
    private final MemorySegment iovecs;
    private final MemorySegment capture;
    private final long[] offsets = new long[CAPACITY];
    private final long[] lengths = new long[CAPACITY];
    private int count;

    /**
     * A list over {@code region}, a segment from {@link NativeMemory#reserve} owned by {@code owner}.
     * The list's few KiB of call buffers are allocated in {@code owner} too, and freed when it closes.
     *
     * @throws IllegalArgumentException if {@code region} does not belong to {@code owner}
     * @throws IllegalStateException    if native memory is not available, or {@code owner} is closed
     */
    public DiscardList(MemorySegment region, Arena owner) {
        if (!NativeMemory.available()) {
            throw new IllegalStateException("native memory is not available; check NativeMemory.available() first");
        }
        if (!region.scope().equals(owner.scope())) {
            throw new IllegalArgumentException("the region must belong to the given arena: the list holds that "
                    + "arena open while the kernel works on the region");
        }
        this.region = region;
        this.iovecs = owner.allocate(IOVEC_BYTES * CAPACITY, Long.BYTES);
        this.capture = Libc.newCapture(owner);
    }

    /** True when {@link #add} could need a new entry and none is left: {@link #discard} first. */
    public boolean isFull() {
        return count == CAPACITY;
    }

    /**
     * Adds {@code bytes} at {@code offset} of the region.
     *
     * @throws IllegalArgumentException  if offset or length is not a positive multiple of 4096 (length)
     *                                   or a multiple of 4096 (offset)
     * @throws IndexOutOfBoundsException if the range is not inside the region
     * @throws IllegalStateException     if the list is full and the range does not extend the last entry
     */
    public void add(long offset, long bytes) {
        if (bytes <= 0 || ((offset | bytes) & 4095) != 0) {
            throw new IllegalArgumentException("cannot discard " + bytes + " bytes at offset " + offset
                    + ": both must be multiples of 4096, the length positive");
        }
        java.util.Objects.checkFromIndexSize(offset, bytes, region.byteSize());
        if (count > 0 && offsets[count - 1] + lengths[count - 1] == offset) {
            lengths[count - 1] += bytes;
            return;
        }
        if (count == CAPACITY) {
            throw new IllegalStateException("discard list full: call discard() first");
        }
        offsets[count] = offset;
        lengths[count] = bytes;
        count++;
    }

    /**
     * Drops the physical pages of every listed range ({@code MADV_DONTNEED}: the process RSS falls and
     * the ranges read as zeros), then empties the list.
     *
     * @throws IllegalStateException if the region's arena is closed or closing (nothing is discarded
     *                               then), or the kernel refuses a range (the message carries errno)
     */
    public void discard() {
        int n = count;
        count = 0;
        int done = batchRefused ? 0 : discardBatched(n);
        for (int i = done; i < n; i++) {
            NativeMemory.discard(region, offsets[i], lengths[i]);
        }
    }

    /** One process_madvise over the first {@code n} entries; returns how many entries it fully covered. */
    private int discardBatched(int n) {
        long total = 0;
        for (int i = 0; i < n; i++) {
            iovecs.set(ValueLayout.JAVA_LONG, i * IOVEC_BYTES, region.address() + offsets[i]);
            iovecs.set(ValueLayout.JAVA_LONG, i * IOVEC_BYTES + Long.BYTES, lengths[i]);
            total += lengths[i];
        }
        // Safe: every iovec names a page-aligned range inside region (checked in add). iovecs lives
        // in region's arena, so the downcall holds that arena for the call: the region stays
        // mapped, and a closed one throws here before the kernel sees an address. The advice only
        // drops page contents, it never unmaps. The pidfd names this process, so no other is touched.
        long result = Libc.processMadvise(capture, SELF_PIDFD, iovecs, n, Abi.MADV_DONTNEED, 0);
        if (result < 0) {
            int errno = (int) -result;
            if (errno == Abi.ENOSYS || errno == Abi.EINVAL || errno == Abi.EPERM) {
                batchRefused = true;
                return 0;
            }
            throw new IllegalStateException("process_madvise(MADV_DONTNEED) of " + n + " ranges (" + total
                    + " bytes) failed with errno " + errno + "; see process_madvise(2)");
        }
        // A short count means the kernel stopped between ranges; the rest get one madvise each.
        int covered = 0;
        long advised = result;
        while (covered < n && advised >= lengths[covered]) {
            advised -= lengths[covered];
            covered++;
        }
        return covered;
    }

    /** A pidfd of this process for process_madvise, or -1 where native memory or either call is missing. */
    private static int openSelfPidfd() {
        // pidfd_open and process_madvise came with glibc 2.36; an older one leaves both unbound.
        if (!NativeMemory.available() || !Libc.bound("pidfd_open", "process_madvise")) {
            return -1;
        }
        try {
            // Safe: takes two integers, returns a new descriptor or -errno; kept open for the JVM's life.
            int pidfd = Libc.pidfdOpen((int) ProcessHandle.current().pid(), 0);
            return pidfd < 0 ? -1 : pidfd;
        } catch (IllegalStateException unavailable) {
            return -1;
        }
    }
}
