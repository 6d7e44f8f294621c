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
import java.nio.file.Path;
import java.util.Locale;
import java.util.Set;

/**
 * The operating system's page cache for one file: drop its pages ({@code posix_fadvise DONTNEED}) and
 * count those still cached ({@code mincore}). See the package documentation for why each call is safe.
 *
 * <p>Thread safe: every method may be called from any thread; nothing is shared between calls.
 */
// Restricted FFM methods are this package's purpose; each call site says why it is safe.
@SuppressWarnings("restricted")
public final class PageCache {

    private static final int O_RDONLY = 0;
    private static final int O_CLOEXEC = 0x80000;
    private static final int POSIX_FADV_DONTNEED = 4;
    private static final int PROT_READ = 0x1;
    private static final int MAP_SHARED = 0x01;
    private static final long MAP_FAILED = -1L;
    private static final int HOST_PAGE = 4096;
    private static final Set<String> GENERIC_64_BIT_ARCHS = Set.of("amd64", "x86_64", "aarch64", "riscv64");

    private static final StructLayout CAPTURE_LAYOUT = Linker.Option.captureStateLayout();
    private static final VarHandle ERRNO = CAPTURE_LAYOUT.varHandle(MemoryLayout.PathElement.groupElement("errno"));

    private static final MethodHandle OPEN;
    private static final MethodHandle CLOSE;
    private static final MethodHandle FADVISE;
    private static final MethodHandle MMAP;
    private static final MethodHandle MINCORE;
    private static final MethodHandle MUNMAP;
    private static final boolean AVAILABLE;

    static {
        MethodHandle open = null;
        MethodHandle close = null;
        MethodHandle fadvise = null;
        MethodHandle mmap = null;
        MethodHandle mincore = null;
        MethodHandle munmap = null;
        boolean available = false;
        String os = System.getProperty("os.name", "").toLowerCase(Locale.ROOT);
        String arch = System.getProperty("os.arch", "").toLowerCase(Locale.ROOT);
        if (os.startsWith("linux") && GENERIC_64_BIT_ARCHS.contains(arch)) {
            try {
                Linker linker = Linker.nativeLinker();
                SymbolLookup libc = linker.defaultLookup();
                Linker.Option errno = Linker.Option.captureCallState("errno");
                ValueLayout sizeT = (ValueLayout) linker.canonicalLayouts().get("size_t");
                ValueLayout i32 = ValueLayout.JAVA_INT;
                // int open(const char *path, int flags, ...): variadic; the mode (read only with O_CREAT) is
                // passed as 0, so the call follows the variadic convention exactly.
                open = linker.downcallHandle(libc.findOrThrow("open"),
                        FunctionDescriptor.of(i32, ValueLayout.ADDRESS, i32, i32), errno,
                        Linker.Option.firstVariadicArg(2));
                // int close(int fd)
                close = linker.downcallHandle(libc.findOrThrow("close"), FunctionDescriptor.of(i32, i32), errno);
                // int posix_fadvise(int fd, off_t offset, off_t len, int advice): returns the error number.
                fadvise = linker.downcallHandle(libc.findOrThrow("posix_fadvise"),
                        FunctionDescriptor.of(i32, i32, ValueLayout.JAVA_LONG, ValueLayout.JAVA_LONG, i32));
                // void *mmap(void *addr, size_t length, int prot, int flags, int fd, off_t offset)
                mmap = linker.downcallHandle(libc.findOrThrow("mmap"),
                        FunctionDescriptor.of(ValueLayout.ADDRESS, ValueLayout.ADDRESS, sizeT, i32, i32, i32,
                                ValueLayout.JAVA_LONG), errno);
                // int mincore(void *addr, size_t length, unsigned char *vec)
                mincore = linker.downcallHandle(libc.findOrThrow("mincore"),
                        FunctionDescriptor.of(i32, ValueLayout.ADDRESS, sizeT, ValueLayout.ADDRESS), errno);
                // int munmap(void *addr, size_t length)
                munmap = linker.downcallHandle(libc.findOrThrow("munmap"),
                        FunctionDescriptor.of(i32, ValueLayout.ADDRESS, sizeT), errno);
                // int getpagesize(void): takes nothing and cannot fail.
                MethodHandle getpagesize = linker.downcallHandle(libc.findOrThrow("getpagesize"),
                        FunctionDescriptor.of(i32));
                available = (int) getpagesize.invokeExact() == HOST_PAGE;
            } catch (Throwable unavailable) {
                // No libc symbol, or native access denied: the benchmark reports the variant as unavailable.
                available = false;
            }
        }
        OPEN = open;
        CLOSE = close;
        FADVISE = fadvise;
        MMAP = mmap;
        MINCORE = mincore;
        MUNMAP = munmap;
        AVAILABLE = available;
    }

    private PageCache() {
    }

    /** True on Linux with the generic constants and 4 KiB pages, the downcalls linked. Else no other method works. */
    public static boolean available() {
        return AVAILABLE;
    }

    /**
     * Asks the kernel to drop {@code file}'s pages from the page cache ({@code POSIX_FADV_DONTNEED} over
     * the whole file). Pages that a process maps, or that are dirty, stay: see {@link #cachedBytes}.
     *
     * @throws IllegalStateException if the file cannot be opened or the kernel refuses; with errno
     */
    public static void evict(Path file) {
        requireAvailable();
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment capture = arena.allocate(CAPTURE_LAYOUT);
            int fd = open(file, arena, capture);
            try {
                int error;
                // Safe: fd is open until the finally below; offset 0 and length 0 mean "the whole file", and
                // the call only changes what the kernel caches, never the file or this process's memory.
                error = (int) FADVISE.invokeExact(fd, 0L, 0L, POSIX_FADV_DONTNEED);
                if (error != 0) {
                    throw new IllegalStateException("posix_fadvise(" + file + ", DONTNEED) failed with error " + error);
                }
            } catch (IllegalStateException e) {
                throw e;
            } catch (Throwable t) {
                throw new IllegalStateException("posix_fadvise downcall failed", t);
            } finally {
                close(fd, file, capture);
            }
        }
    }

    /**
     * Bytes of {@code file} in the page cache now, counted in whole 4 KiB pages ({@code mincore} over a
     * read-only mapping that is never touched, so counting caches nothing).
     *
     * @throws IllegalStateException if the file cannot be opened or mapped; with errno
     */
    public static long cachedBytes(Path file) {
        requireAvailable();
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment capture = arena.allocate(CAPTURE_LAYOUT);
            int fd = open(file, arena, capture);
            try {
                long length = java.nio.file.Files.size(file);
                if (length == 0) {
                    return 0;
                }
                long pages = (length + HOST_PAGE - 1) / HOST_PAGE;
                MemorySegment vector = arena.allocate(pages);
                MemorySegment mapping;
                // Safe: a null hint never replaces an existing mapping; read-only and shared, so it can
                // neither change the file nor take private memory; the result is checked before use.
                mapping = (MemorySegment) MMAP.invokeExact(capture, MemorySegment.NULL, length, PROT_READ,
                        MAP_SHARED, fd, 0L);
                if (mapping.address() == MAP_FAILED) {
                    throw new IllegalStateException("mmap of " + file + " failed with errno " + errno(capture));
                }
                try {
                    // Safe: mapping is the live range just mapped (mincore reads page tables, not the
                    // pages); vector is a confined allocation of exactly one byte per page of that range.
                    int result = (int) MINCORE.invokeExact(capture, mapping, length, vector);
                    if (result != 0) {
                        throw new IllegalStateException("mincore of " + file + " failed with errno " + errno(capture));
                    }
                } finally {
                    // Safe: the address and length mmap returned, unmapped once; nothing refers to it after.
                    int result = (int) MUNMAP.invokeExact(capture, mapping, length);
                    if (result != 0) {
                        throw new IllegalStateException("munmap of " + file + " failed with errno " + errno(capture));
                    }
                }
                long cached = 0;
                for (long p = 0; p < pages; p++) {
                    cached += vector.get(ValueLayout.JAVA_BYTE, p) & 1;
                }
                return cached * HOST_PAGE;
            } catch (IllegalStateException e) {
                throw e;
            } catch (Throwable t) {
                throw new IllegalStateException("page cache query of " + file + " failed", t);
            } finally {
                close(fd, file, capture);
            }
        }
    }

    private static int open(Path file, Arena arena, MemorySegment capture) {
        MemorySegment path = arena.allocateFrom(file.toString());
        int fd;
        try {
            // Safe: path is a NUL-terminated copy in an arena that outlives the call; read-only, so the
            // file cannot change, and close-on-exec, so no child process inherits the descriptor.
            fd = (int) OPEN.invokeExact(capture, path, O_RDONLY | O_CLOEXEC, 0);
        } catch (Throwable t) {
            throw new IllegalStateException("open downcall failed", t);
        }
        if (fd < 0) {
            throw new IllegalStateException("cannot open " + file + ": errno " + errno(capture));
        }
        return fd;
    }

    private static void close(int fd, Path file, MemorySegment capture) {
        int result;
        try {
            // Safe: fd came from open() in the same method and is closed exactly once, here.
            result = (int) CLOSE.invokeExact(capture, fd);
        } catch (Throwable t) {
            throw new IllegalStateException("close downcall failed", t);
        }
        if (result != 0) {
            throw new IllegalStateException("close of " + file + " failed with errno " + errno(capture));
        }
    }

    private static int errno(MemorySegment capture) {
        return (int) ERRNO.get(capture, 0L);
    }

    private static void requireAvailable() {
        if (!AVAILABLE) {
            throw new IllegalStateException("the page cache cannot be controlled on " + System.getProperty("os.name")
                    + "/" + System.getProperty("os.arch") + ": posix_fadvise needs Linux x86-64, AArch64 or RISC-V 64");
        }
    }
}
