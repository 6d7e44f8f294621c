package io.samepage.linux;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.StructLayout;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.lang.invoke.VarHandle;
import java.nio.ByteBuffer;
import java.util.Locale;
import java.util.Set;

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
// Restricted FFM methods are this package's purpose; the call site says why it is safe.
@SuppressWarnings("restricted")
public final class ProcessVmReader implements AutoCloseable {

    /** Pages per call at most: 1 MiB, a quarter of the kernel's IOV_MAX (1024) iovecs. */
    public static final int MAX_PAGES = 256;

    private static final int PAGE = 4096;
    private static final int IOVEC_BYTES = 16;

    private static final Set<String> ARCHS = Set.of("amd64", "x86_64", "aarch64", "riscv64");
    private static final StructLayout CAPTURE_LAYOUT = Linker.Option.captureStateLayout();
    private static final VarHandle ERRNO = CAPTURE_LAYOUT.varHandle(MemoryLayout.PathElement.groupElement("errno"));

    /** {@code ssize_t process_vm_readv(pid_t, const struct iovec *, unsigned long, const struct iovec *, unsigned long, unsigned long)}. */
    private static final MethodHandle PROCESS_VM_READV;
    private static final String UNAVAILABLE;

    static {
        MethodHandle readv = null;
        String unavailable = null;
        String os = System.getProperty("os.name", "").toLowerCase(Locale.ROOT);
        String arch = System.getProperty("os.arch", "").toLowerCase(Locale.ROOT);
        if (!os.startsWith("linux") || !ARCHS.contains(arch)) {
            unavailable = "reading another process's memory needs Linux on x86-64, AArch64 or RISC-V 64, not "
                    + os + "/" + arch;
        } else {
            try {
                Linker linker = Linker.nativeLinker();
                readv = linker.downcallHandle(linker.defaultLookup().findOrThrow("process_vm_readv"),
                        FunctionDescriptor.of(ValueLayout.JAVA_LONG, ValueLayout.JAVA_INT, ValueLayout.ADDRESS,
                                ValueLayout.JAVA_LONG, ValueLayout.ADDRESS, ValueLayout.JAVA_LONG,
                                ValueLayout.JAVA_LONG),
                        Linker.Option.captureCallState("errno"));
            } catch (RuntimeException | Error e) {
                unavailable = "process_vm_readv could not be linked (" + e.getMessage()
                        + "); run java with --enable-native-access=ALL-UNNAMED";
            }
        }
        PROCESS_VM_READV = readv;
        UNAVAILABLE = unavailable;
    }

    private final Arena arena = Arena.ofConfined();
    private final MemorySegment buffer = arena.allocate((long) MAX_PAGES * PAGE, PAGE);
    private final MemorySegment localIov = arena.allocate(IOVEC_BYTES, 8);
    private final MemorySegment remoteIov = arena.allocate((long) MAX_PAGES * IOVEC_BYTES, 8);
    private final MemorySegment capture = arena.allocate(CAPTURE_LAYOUT);
    private final ByteBuffer view = buffer.asByteBuffer().asReadOnlyBuffer();

    /**
     * @throws IllegalStateException with {@link #unavailableReason()} where the call cannot be made
     */
    public ProcessVmReader() {
        if (PROCESS_VM_READV == null) {
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
        long result;
        try {
            // Safe: the kernel writes only into the local iovec, [buffer, buffer + count * 4096), which
            // lies inside buffer (count <= MAX_PAGES was checked) and stays alive with this reader's
            // confined arena for the call. The remote side is only read, in another address space:
            // a bad remote address gives EFAULT, never a fault in this process. flags must be 0.
            result = (long) PROCESS_VM_READV.invokeExact(capture, pid, localIov, 1L, remoteIov, (long) count, 0L);
        } catch (Throwable t) {
            throw new IllegalStateException("process_vm_readv downcall failed", t);
        }
        if (result < 0) {
            return -(int) ERRNO.get(capture, 0L);
        }
        return result / PAGE;
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
