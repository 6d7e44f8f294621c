package io.samepage.linux;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;

/**
 * Copies pages of another process into one off-heap buffer with {@code process_vm_readv(2)}, up to
 * {@value #MAX_PAGES} pages (1 MiB) per call. See the package documentation for why the call is safe.
 *
 * <p>Each remote page is its own {@code iovec}: the kernel never splits an element in a partial
 * transfer, so a page it cannot read (unmapped meanwhile, or device memory) stops the copy exactly
 * there, and every page before it was copied whole.
 *
 * <p>Not thread safe: one reader per thread, used by the thread that created it (a confined arena
 * holds its buffer). Allocates nothing per call.
 */
public final class ProcessVmReader implements AutoCloseable {

    /** Pages per call at most: 1 MiB, a quarter of the kernel's IOV_MAX (1024) iovecs. */
    public static final int MAX_PAGES = 256;

    private static final int PAGE = 4096;
    private static final int IOVEC_BYTES = 16;

    private static final String UNAVAILABLE = Libc.unavailable("reads of another process's memory",
            "process_vm_readv");

    private final Arena arena = Arena.ofConfined();
    private final MemorySegment buffer = arena.allocate((long) MAX_PAGES * PAGE, PAGE);
    private final MemorySegment localIov = arena.allocate(IOVEC_BYTES, 8);
    private final MemorySegment remoteIov = arena.allocate((long) MAX_PAGES * IOVEC_BYTES, 8);
    private final MemorySegment capture = Libc.newCapture(arena);
    private final ByteBuffer view = buffer.asByteBuffer().asReadOnlyBuffer();

    /**
     * @throws IllegalStateException with {@link #unavailableReason()} where the call cannot be made
     */
    public ProcessVmReader() {
        if (UNAVAILABLE != null) {
            arena.close();
            throw new IllegalStateException(UNAVAILABLE);
        }
        localIov.set(ValueLayout.ADDRESS, 0, buffer);
    }

    /** Null if {@code process_vm_readv} can be called here, else why not. */
    public static String unavailableReason() {
        return UNAVAILABLE;
    }

    /**
     * Copies the 4 KiB pages at {@code addresses[from .. from + count)} of process {@code pid} into
     * pages {@code 0 .. count} of the buffer, in that order.
     *
     * @param addresses page-aligned addresses in the target, each one page
     * @param count     1 to {@value #MAX_PAGES}
     * @return the pages copied, from the first (fewer than {@code count} if a page could not be read:
     *         the one at the returned index), or {@code -errno} if not even the first page was copied
     */
    public long read(int pid, long[] addresses, int from, int count) {
        if (count < 1 || count > MAX_PAGES) {
            throw new IllegalArgumentException("count must be 1 to " + MAX_PAGES + ", not " + count);
        }
        java.util.Objects.checkFromIndexSize(from, count, addresses.length);
        for (int i = 0; i < count; i++) {
            remoteIov.set(ValueLayout.JAVA_LONG, (long) i * IOVEC_BYTES, addresses[from + i]);
            remoteIov.set(ValueLayout.JAVA_LONG, (long) i * IOVEC_BYTES + 8, PAGE);
        }
        localIov.set(ValueLayout.JAVA_LONG, 8, (long) count * PAGE);
        // Safe: the kernel writes only into the local iovec, [buffer, buffer + count * 4096), which
        // lies inside buffer (count <= MAX_PAGES was checked) and stays alive with this reader's
        // confined arena for the call. The remote side is only read, in another address space:
        // a bad remote address gives EFAULT, never a fault in this process. flags must be 0.
        long result = Libc.processVmReadv(capture, pid, localIov, 1L, remoteIov, count, 0L);
        return result < 0 ? result : result / PAGE;
    }

    /** A read-only view of buffer pages {@code [first, first + count)}, valid until the next read. */
    public ByteBuffer pages(int first, int count) {
        return view.slice(first * PAGE, count * PAGE);
    }

    @Override
    public void close() {
        arena.close();
    }
}
