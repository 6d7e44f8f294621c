package io.samepage.linux;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * The operating system's page cache for one file: drop its pages ({@code posix_fadvise DONTNEED}) and
 * count those still cached ({@code mincore}). See the package documentation for why each call is safe.
 *
 * <p>Thread safe: every method may be called from any thread; nothing is shared between threads.
 */
public final class PageCache {

    private static final int HOST_PAGE = 4096;

    /**
     * Libc binds these only on Linux on the 64-bit architectures whose {@code open}, {@code mmap} and
     * {@code posix_fadvise} constants it knows, and only with native access; the counts are in 4 KiB pages.
     */
    private static final boolean AVAILABLE = Libc.bound("open", "close", "posix_fadvise", "mmap", "mincore", "munmap",
            "getpagesize") && Libc.getpagesize() == HOST_PAGE;

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
        int fd = open(file);
        try {
            // Safe: fd is open until the finally below; offset 0 and length 0 mean "the whole file", and
            // the call only changes what the kernel caches, never the file or this process's memory.
            int result = Libc.posixFadvise(fd, 0L, 0L, Abi.POSIX_FADV_DONTNEED);
            if (result != 0) {
                throw new IllegalStateException("posix_fadvise(" + file + ", DONTNEED) failed with error " + -result);
            }
        } finally {
            close(fd, file);
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
        int fd = open(file);
        try (Arena arena = Arena.ofConfined()) {
            long length = Files.size(file);
            if (length == 0) {
                return 0;
            }
            long pages = (length + HOST_PAGE - 1) / HOST_PAGE;
            MemorySegment vector = arena.allocate(pages);
            // Safe: a null hint never replaces an existing mapping; read-only and shared, so it can
            // neither change the file nor take private memory; the result is checked before use.
            long mapping = Libc.mmap(0L, length, Abi.PROT_READ, Abi.MAP_SHARED, fd, 0L);
            if (mapping < 0) {
                throw new IllegalStateException("mmap of " + file + " failed with errno " + -mapping);
            }
            try {
                // Safe: mapping is the live range just mapped (mincore reads page tables, not the
                // pages); vector is a confined allocation of exactly one byte per page of that range.
                int result = Libc.mincore(mapping, length, vector);
                if (result != 0) {
                    throw new IllegalStateException("mincore of " + file + " failed with errno " + -result);
                }
            } finally {
                // Safe: the address and length mmap returned, unmapped once; nothing refers to it after.
                int result = Libc.munmap(mapping, length);
                if (result != 0) {
                    throw new IllegalStateException("munmap of " + file + " failed with errno " + -result);
                }
            }
            long cached = 0;
            for (long p = 0; p < pages; p++) {
                cached += vector.get(ValueLayout.JAVA_BYTE, p) & 1;
            }
            return cached * HOST_PAGE;
        } catch (IOException e) {
            throw new IllegalStateException("page cache query of " + file + " failed", e);
        } finally {
            close(fd, file);
        }
    }

    private static int open(Path file) {
        int fd;
        try (Arena arena = Arena.ofConfined()) {
            // Safe: path is a NUL-terminated copy in an arena that outlives the call; read-only, so the
            // file cannot change, and close-on-exec, so no child process inherits the descriptor.
            fd = Libc.open(arena.allocateFrom(file.toString()), Abi.O_RDONLY | Abi.O_CLOEXEC);
        }
        if (fd < 0) {
            throw new IllegalStateException("cannot open " + file + ": errno " + -fd);
        }
        return fd;
    }

    private static void close(int fd, Path file) {
        // Safe: fd came from open() in the same method and is closed exactly once, here.
        int result = Libc.close(fd);
        if (result != 0) {
            throw new IllegalStateException("close of " + file + " failed with errno " + -result);
        }
    }

    private static void requireAvailable() {
        if (!AVAILABLE) {
            throw new IllegalStateException("the page cache cannot be controlled on " + System.getProperty("os.name")
                    + "/" + System.getProperty("os.arch") + ": posix_fadvise needs Linux x86-64, AArch64 or RISC-V 64");
        }
    }
}
