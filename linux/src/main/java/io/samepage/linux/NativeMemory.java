package io.samepage.linux;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

/**
 * Anonymous memory from the Linux kernel: {@code mmap}, {@code munmap} and {@code madvise} through
 * {@link Libc}. See the package documentation for why each call is safe.
 *
 * <p>Thread safe: every method may be called from any thread. {@link #discard} allocates nothing once
 * a thread has made its first call (the {@code errno} capture buffer is kept per thread).
 */
// Restricted FFM methods are this package's purpose; each call site says why it is safe.
@SuppressWarnings("restricted")
public final class NativeMemory {

    private static final int FRAME_BYTES = 4096;

    /** One page table's reach with 4 KiB pages: 512 pages. */
    public static final long BLOCK_BYTES = 2L << 20;

    /**
     * Libc binds these only on Linux on the 64-bit architectures whose {@code mmap} flag values and
     * 64-bit {@code off_t} it knows, and only with native access; the pool's frames must also be whole
     * host pages.
     */
    private static final boolean AVAILABLE = Libc.bound("mmap", "munmap", "madvise", "getpagesize")
            && Libc.getpagesize() == FRAME_BYTES;
    /** Set once the kernel did not know {@code MADV_POPULATE_WRITE}: {@link #populate} stops asking. */
    private static volatile boolean populateRefused;

    private NativeMemory() {
    }

    /**
     * True if this is Linux on an architecture this class knows the {@code mmap} flags of, with 4 KiB
     * host pages, and the downcalls linked. When false, no other method may be called.
     */
    public static boolean available() {
        return AVAILABLE;
    }

    /**
     * Maps {@code bytes} of private anonymous memory with {@code MAP_NORESERVE}: untouched pages cost no
     * RAM and no commit charge, and read as zeros. The region is on 4 KiB pages only
     * ({@code MADV_NOHUGEPAGE}): where the host's {@code transparent_hugepage/enabled} is {@code always},
     * a write would otherwise fault in a whole 2 MiB huge page, and {@link #discard discarding} one frame
     * of it only splits its mapping. The kernel then keeps the huge page's memory until it is short of
     * memory, while the process's {@code RssAnon} and the engine's counters say it is free. A kernel
     * built without transparent huge pages refuses the advice ({@code EINVAL}), which is then moot. The
     * mapping lives as long as {@code owner}: closing it unmaps the region, after which every access to
     * the segment throws {@link IllegalStateException} instead of faulting.
     *
     * @param bytes  the region size, a positive multiple of 4096
     * @param owner  the arena whose close unmaps the region
     * @return the region, {@code bytes} long, aligned to 4096
     * @throws IllegalArgumentException if {@code bytes} is not a positive multiple of 4096
     * @throws IllegalStateException    if the kernel refuses the mapping; the message carries errno
     */
    public static MemorySegment reserve(long bytes, Arena owner) {
        requireAvailable();
        requireFrames(bytes);
        return own(map(bytes), bytes, owner);
    }

    /**
     * Like {@link #reserve(long, Arena)}, but placed so that {@code region.address() + blockOffset} is a
     * multiple of {@value #BLOCK_BYTES} (2 MiB, the memory one page table maps on x86_64 and arm64 with
     * 4 KiB pages). Discarding every page of such a block costs far less per page than discarding part
     * of it: on this project's machine kind (a paravirtual guest) 266 ns a page, against 609 for half
     * of every block and 823 for every other page ({@code DiscardBenchmark}, docs/perf/engine.md). Only
     * address space is spent: 2 MiB less a page more is mapped first, and what lies outside the region
     * is unmapped again before this returns.
     *
     * @param blockOffset where in the region a block starts, 0 to {@code bytes - 1}, a multiple of 4096
     * @throws IllegalArgumentException if {@code bytes} or {@code blockOffset} is not as described
     */
    public static MemorySegment reserve(long bytes, long blockOffset, Arena owner) {
        return reserve(bytes, blockOffset, owner, Libc::munmap);
    }

    /** {@code munmap(address, length)}: 0, or {@code -errno}. Tests stand in a failing one. */
    @FunctionalInterface
    interface Unmap {
        int munmap(long address, long length);
    }

    /**
     * {@link #reserve(long, long, Arena)} with {@code unmap} unmapping the spare address space, and what is
     * left if that fails. If a trim fails, what is still this call's own is unmapped and nothing else:
     * once the part before the region is gone, another thread may map something there, so the cleanup
     * starts at the region. The exception says whether that cleanup left anything mapped.
     */
    static MemorySegment reserve(long bytes, long blockOffset, Arena owner, Unmap unmap) {
        requireAvailable();
        requireFrames(bytes);
        if (blockOffset < 0 || blockOffset >= bytes || (blockOffset & (FRAME_BYTES - 1)) != 0) {
            throw new IllegalArgumentException("cannot place a block at offset " + blockOffset + " of a region of "
                    + bytes + " bytes: need a multiple of " + FRAME_BYTES + " below the region size");
        }
        long spare = BLOCK_BYTES - FRAME_BYTES;
        long mapped = map(bytes + spare);
        long end = mapped + bytes + spare;
        // The first address at or past mapped that puts blockOffset on a block: at most spare bytes past it.
        long address = ((mapped + blockOffset + BLOCK_BYTES - 1) & -BLOCK_BYTES) - blockOffset;
        // Safe: each range lies inside [mapped, end), which the kernel just mapped for this process and
        // nothing else knows of yet; the region [address, address + bytes) stays. After a failed trim
        // only what this call still owns is unmapped: never the part before the region once it is gone.
        int result = unmapped(unmap, mapped, address - mapped);
        if (result != 0) {
            throw trimFailed(result, unmap, mapped, end);
        }
        result = unmapped(unmap, address + bytes, end - address - bytes);
        if (result != 0) {
            throw trimFailed(result, unmap, address, end);
        }
        return own(address, bytes, owner);
    }

    /** Unmaps [from, to), what the failed reservation still owns, and says what failed and what stays. */
    private static IllegalStateException trimFailed(int result, Unmap unmap, long from, long to) {
        int cleanup = unmap.munmap(from, to - from);
        return new IllegalStateException("munmap of the spare address space beside the frame pool failed with errno "
                + -result + " (see munmap(2)); " + (cleanup == 0 ? "nothing stays mapped"
                : "unmapping the rest of the reservation failed too, with errno " + -cleanup + ": " + (to - from)
                + " bytes of address space at 0x" + Long.toHexString(from) + " stay mapped"));
    }

    private static void requireFrames(long bytes) {
        if (bytes <= 0 || (bytes & (FRAME_BYTES - 1)) != 0) {
            throw new IllegalArgumentException("cannot map " + bytes + " bytes: need a positive multiple of "
                    + FRAME_BYTES);
        }
    }

    private static long map(long bytes) {
        // Safe: a null hint never replaces an existing mapping; fd -1 and offset 0 as MAP_ANONYMOUS
        // requires; the result is checked for MAP_FAILED (-errno here) before anything dereferences it.
        long address = Libc.mmap(0L, bytes, Abi.PROT_READ | Abi.PROT_WRITE,
                Abi.MAP_PRIVATE | Abi.MAP_ANONYMOUS | Abi.MAP_NORESERVE, -1, 0L);
        if (address < 0) {
            int errno = (int) -address;
            throw new IllegalStateException("mmap of " + bytes + " bytes (" + (bytes >>> 20)
                    + " MiB) for the frame pool failed with errno " + errno + ": "
                    + (errno == Abi.ENOMEM ? outOfMemory() : "see mmap(2)"));
        }
        // Safe: [address, address + bytes) is the mapping just made for this call, which nothing else knows
        // of; the advice changes no byte of it, and on failure the whole of it is unmapped again.
        int advised = Libc.madvise(MemorySegment.ofAddress(address).reinterpret(bytes), Abi.MADV_NOHUGEPAGE);
        if (advised != 0 && advised != -Abi.EINVAL) {
            Libc.munmap(address, bytes);
            throw new IllegalStateException("madvise(MADV_NOHUGEPAGE) of the frame pool's " + (bytes >>> 20)
                    + " MiB failed with errno " + -advised + "; see madvise(2)");
        }
        return address;
    }

    /**
     * Why a reservation may get ENOMEM here. In overcommit mode 2 the kernel ignores {@code MAP_NORESERVE}
     * and charges the whole region against {@code CommitLimit} at once, untouched or not.
     */
    private static String outOfMemory() {
        String mode;
        try {
            mode = java.nio.file.Files.readString(java.nio.file.Path.of("/proc/sys/vm/overcommit_memory")).trim();
        } catch (java.io.IOException | RuntimeException unreadable) {
            mode = "";
        }
        return "2".equals(mode) ? "ENOMEM, vm.overcommit_memory is 2, so the whole pool counts against CommitLimit "
                + "(/proc/meminfo) before any frame is used; configure a smaller pool"
                : "ENOMEM, the address space (ulimit -v) or vm.max_map_count is exhausted; configure a smaller pool";
    }

    private static int unmapped(Unmap unmap, long address, long bytes) {
        return bytes == 0 ? 0 : unmap.munmap(address, bytes);
    }

    private static MemorySegment own(long address, long bytes, Arena owner) {
        // Safe: the kernel mapped exactly [address, address + bytes) for this process (or a larger range
        // whose rest is unmapped), and the cleanup that unmaps it runs once, when owner closes and no
        // thread can access it any more.
        return MemorySegment.ofAddress(address).reinterpret(bytes, owner, NativeMemory::release);
    }

    /**
     * Drops the physical pages behind {@code bytes} of {@code region} starting at {@code offset}
     * ({@code madvise(MADV_DONTNEED)}): the process RSS falls and the range reads as zeros afterwards.
     *
     * @param region a region from {@link #reserve}
     * @param offset where to start, a multiple of 4096
     * @param bytes  how much to drop, a multiple of 4096
     * @throws IndexOutOfBoundsException if the range is not inside the region
     * @throws IllegalArgumentException  if offset or length is not page aligned
     * @throws IllegalStateException     if the kernel refuses; the message carries errno
     */
    public static void discard(MemorySegment region, long offset, long bytes) {
        requireAvailable();
        if (((offset | bytes) & (FRAME_BYTES - 1)) != 0) {
            throw new IllegalArgumentException("cannot discard " + bytes + " bytes at offset " + offset
                    + ": both must be multiples of " + FRAME_BYTES);
        }
        MemorySegment range = region.asSlice(offset, bytes);
        // Safe: range is a bounds-checked slice of a live mapping from reserve(), page aligned; the
        // downcall keeps its arena open for the call, so it never touches memory the region lost.
        int result = Libc.madvise(range, Abi.MADV_DONTNEED);
        if (result != 0) {
            throw new IllegalStateException("madvise(MADV_DONTNEED) of " + bytes + " bytes at offset " + offset
                    + " failed with errno " + -result + "; see madvise(2)");
        }
    }

    /**
     * Backs {@code bytes} of {@code region} starting at {@code offset} with memory now
     * ({@code madvise(MADV_POPULATE_WRITE)}, Linux 5.14): what a write to each page would fault in, in
     * one system call instead of one page fault each. The bytes do not change. A hint: false where the
     * kernel refuses (too old to know the advice, or out of memory), and then the pages fault in when
     * first written, as without it. After the first refusal for want of the advice ({@code EINVAL}),
     * every later call returns false at once.
     *
     * @param region a region from {@link #reserve}
     * @param offset where to start, a multiple of 4096
     * @param bytes  how much to back, a multiple of 4096
     * @return true if the range is backed
     * @throws IndexOutOfBoundsException if the range is not inside the region
     * @throws IllegalArgumentException  if offset or length is not page aligned
     */
    public static boolean populate(MemorySegment region, long offset, long bytes) {
        requireAvailable();
        if (((offset | bytes) & (FRAME_BYTES - 1)) != 0) {
            throw new IllegalArgumentException("cannot populate " + bytes + " bytes at offset " + offset
                    + ": both must be multiples of " + FRAME_BYTES);
        }
        MemorySegment range = region.asSlice(offset, bytes);
        if (populateRefused) {
            return false;
        }
        // Safe: as in discard, a bounds-checked, page-aligned slice of a live mapping from reserve().
        int result = Libc.madvise(range, Abi.MADV_POPULATE_WRITE);
        if (result == -Abi.EINVAL) {
            populateRefused = true;
        }
        return result == 0;
    }

    /** munmap: the cleanup action of every region from {@link #reserve}; runs once, when its arena closes. */
    private static void release(MemorySegment region) {
        // Safe: region is exactly what mmap returned (address and length), and this runs only as its
        // arena's cleanup, after the arena is closed, so nothing can access the range afterwards.
        int result = Libc.munmap(region.address(), region.byteSize());
        if (result != 0) {
            throw new IllegalStateException("munmap of " + region.byteSize() + " bytes failed with errno "
                    + -result + "; see munmap(2)");
        }
    }

    private static void requireAvailable() {
        if (!AVAILABLE) {
            throw new IllegalStateException("native memory is not available on " + System.getProperty("os.name")
                    + "/" + System.getProperty("os.arch") + "; check NativeMemory.available() first");
        }
    }
}
