package io.samepage.linux;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.StructLayout;
import java.lang.foreign.SymbolLookup;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.lang.invoke.VarHandle;
import java.util.Locale;
import java.util.Set;

/**
 * Anonymous memory from the Linux kernel: {@code mmap}, {@code munmap} and {@code madvise} through FFM.
 * See the package documentation for why each call is safe.
 *
 * <p>Thread safe: every method may be called from any thread. {@link #discard} allocates nothing once
 * a thread has made its first call (the {@code errno} capture buffer is kept per thread).
 */
// Restricted FFM methods are this package's purpose; each call site says why it is safe.
@SuppressWarnings("restricted")
public final class NativeMemory {

    private static final int PROT_READ = 0x1;
    private static final int PROT_WRITE = 0x2;
    private static final int MAP_PRIVATE = 0x02;
    private static final int MAP_ANONYMOUS = 0x20;
    private static final int MAP_NORESERVE = 0x4000;
    private static final int MADV_DONTNEED = 4;
    private static final long MAP_FAILED = -1L;
    private static final int FRAME_BYTES = 4096;

    /** Architectures whose {@code mmap} flag values are the generic ones above, with 64-bit {@code off_t}. */
    private static final Set<String> GENERIC_64_BIT_ARCHS = Set.of("amd64", "x86_64", "aarch64", "riscv64");

    private static final StructLayout CAPTURE_LAYOUT = Linker.Option.captureStateLayout();
    private static final VarHandle ERRNO =
            CAPTURE_LAYOUT.varHandle(MemoryLayout.PathElement.groupElement("errno"));
    private static final ThreadLocal<MemorySegment> CAPTURE =
            ThreadLocal.withInitial(() -> Arena.ofAuto().allocate(CAPTURE_LAYOUT));

    private static final MethodHandle MMAP;
    private static final MethodHandle MUNMAP;
    private static final MethodHandle MADVISE;
    private static final boolean AVAILABLE;

    static {
        MethodHandle mmap = null;
        MethodHandle munmap = null;
        MethodHandle madvise = null;
        boolean available = false;
        String os = System.getProperty("os.name", "").toLowerCase(Locale.ROOT);
        String arch = System.getProperty("os.arch", "").toLowerCase(Locale.ROOT);
        if (os.startsWith("linux") && GENERIC_64_BIT_ARCHS.contains(arch)) {
            try {
                Linker linker = Linker.nativeLinker();
                SymbolLookup libc = linker.defaultLookup();
                Linker.Option errno = Linker.Option.captureCallState("errno");
                ValueLayout sizeT = (ValueLayout) linker.canonicalLayouts().get("size_t");
                // void *mmap(void *addr, size_t length, int prot, int flags, int fd, off_t offset)
                mmap = linker.downcallHandle(libc.findOrThrow("mmap"),
                        FunctionDescriptor.of(ValueLayout.ADDRESS, ValueLayout.ADDRESS, sizeT, ValueLayout.JAVA_INT,
                                ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.JAVA_LONG),
                        errno);
                // int munmap(void *addr, size_t length)
                munmap = linker.downcallHandle(libc.findOrThrow("munmap"),
                        FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.ADDRESS, sizeT), errno);
                // int madvise(void *addr, size_t length, int advice)
                madvise = linker.downcallHandle(libc.findOrThrow("madvise"),
                        FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.ADDRESS, sizeT, ValueLayout.JAVA_INT),
                        errno);
                // int getpagesize(void): takes nothing and cannot fail.
                MethodHandle getpagesize = linker.downcallHandle(libc.findOrThrow("getpagesize"),
                        FunctionDescriptor.of(ValueLayout.JAVA_INT));
                available = (int) getpagesize.invokeExact() == FRAME_BYTES;
            } catch (Throwable unavailable) {
                // No libc symbol, or native access denied (--illegal-native-access=deny): use the fallback.
                available = false;
            }
        }
        MMAP = mmap;
        MUNMAP = munmap;
        MADVISE = madvise;
        AVAILABLE = available;
    }

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
        MemorySegment capture = CAPTURE.get();
        MemorySegment address;
        try {
            // Safe: a null hint never replaces an existing mapping; fd -1 and offset 0 as MAP_ANONYMOUS
            // requires; the result is checked for MAP_FAILED before anything dereferences it.
            address = (MemorySegment) MMAP.invokeExact(capture, MemorySegment.NULL, bytes,
                    PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0L);
        } catch (Throwable t) {
            throw new IllegalStateException("mmap downcall failed", t);
        }
        if (address.address() == MAP_FAILED) {
            int errno = (int) ERRNO.get(capture, 0L);
            throw new IllegalStateException("mmap of " + bytes + " bytes (" + (bytes >>> 20)
                    + " MiB) for the frame pool failed with errno " + errno + ": "
                    + (errno == 12 ? "ENOMEM, the address space or vm.max_map_count is exhausted; "
                    + "configure a smaller pool" : "see mmap(2)"));
        }
        // Safe: the kernel just mapped exactly [address, address + bytes) for this process, and the
        // cleanup that unmaps it runs once, when owner closes and no thread can access it any more.
        return address.reinterpret(bytes, owner, NativeMemory::release);
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
        MemorySegment capture = CAPTURE.get();
        int result;
        try {
            // Safe: range is a bounds-checked slice of a live mapping from reserve(), page aligned; the
            // downcall keeps its arena open for the call, so it never touches memory the region lost.
            result = (int) MADVISE.invokeExact(capture, range, bytes, MADV_DONTNEED);
        } catch (Throwable t) {
            throw new IllegalStateException("madvise downcall failed", t);
        }
        if (result != 0) {
            throw new IllegalStateException("madvise(MADV_DONTNEED) of " + bytes + " bytes at offset " + offset
                    + " failed with errno " + (int) ERRNO.get(capture, 0L) + "; see madvise(2)");
        }
    }

    /** munmap: the cleanup action of every region from {@link #reserve}; runs once, when its arena closes. */
    private static void release(MemorySegment region) {
        MemorySegment capture = CAPTURE.get();
        int result;
        try {
            // Safe: region is exactly what mmap returned (address and length), and this runs only as its
            // arena's cleanup, after the arena is closed, so nothing can access the range afterwards.
            result = (int) MUNMAP.invokeExact(capture, region, region.byteSize());
        } catch (Throwable t) {
            throw new IllegalStateException("munmap downcall failed", t);
        }
        if (result != 0) {
            throw new IllegalStateException("munmap of " + region.byteSize() + " bytes failed with errno "
                    + (int) ERRNO.get(capture, 0L) + "; see munmap(2)");
        }
    }

    private static void requireAvailable() {
        if (!AVAILABLE) {
            throw new IllegalStateException("native memory is not available on " + System.getProperty("os.name")
                    + "/" + System.getProperty("os.arch") + "; check NativeMemory.available() first");
        }
    }
}
