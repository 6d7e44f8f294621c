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

    /**
     * Libc binds these only on Linux on the 64-bit architectures whose {@code mmap} flag values and
     * 64-bit {@code off_t} it knows, and only with native access; the pool's frames must also be whole
     * host pages.
     */
    private static final boolean AVAILABLE = Libc.bound("mmap", "munmap", "madvise", "getpagesize")
            && Libc.getpagesize() == FRAME_BYTES;

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
     * RAM and no commit charge, and read as zeros. The mapping lives as long as {@code owner}: closing it
     * unmaps the region, after which every access to the segment throws {@link IllegalStateException}
     * instead of faulting.
     *
     * @param bytes  the region size, a positive multiple of 4096
     * @param owner  the arena whose close unmaps the region
     * @return the region, {@code bytes} long, aligned to 4096
     * @throws IllegalArgumentException if {@code bytes} is not a positive multiple of 4096
     * @throws IllegalStateException    if the kernel refuses the mapping; the message carries errno
     */
    public static MemorySegment reserve(long bytes, Arena owner) {
        requireAvailable();
        if (bytes <= 0 || (bytes & (FRAME_BYTES - 1)) != 0) {
            throw new IllegalArgumentException("cannot map " + bytes + " bytes: need a positive multiple of "
                    + FRAME_BYTES);
        }
        // Safe: a null hint never replaces an existing mapping; fd -1 and offset 0 as MAP_ANONYMOUS
        // requires; the result is checked for MAP_FAILED (-errno here) before anything dereferences it.
        long address = Libc.mmap(0L, bytes, Abi.PROT_READ | Abi.PROT_WRITE,
                Abi.MAP_PRIVATE | Abi.MAP_ANONYMOUS | Abi.MAP_NORESERVE, -1, 0L);
        if (address < 0) {
            int errno = (int) -address;
            throw new IllegalStateException("mmap of " + bytes + " bytes (" + (bytes >>> 20)
                    + " MiB) for the frame pool failed with errno " + errno + ": "
                    + (errno == Abi.ENOMEM ? "ENOMEM, the address space or vm.max_map_count is exhausted; "
                    + "configure a smaller pool" : "see mmap(2)"));
        }
        // Safe: the kernel just mapped exactly [address, address + bytes) for this process, and the
        // cleanup that unmaps it runs once, when owner closes and no thread can access it any more.
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
