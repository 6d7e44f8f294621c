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

/**
 * Private anonymous memory ({@code mmap(MAP_PRIVATE | MAP_ANONYMOUS)}) that can be offered to kernel
 * KSM ({@code madvise(MADV_MERGEABLE)}): the memory of the density suite's KSM helper process, the way
 * QEMU's default RAM backend offers guest RAM. KSM ignores shared mappings, so the JVM's own
 * {@code Arena.allocate} (also private anonymous, but not advised) is not enough: the advice needs the
 * address range.
 *
 * <p>Thread safety: map, fill and advise from one thread; {@link #close()} once, after every use.
 */
// Restricted FFM methods are this package's purpose; each call site says why it is safe.
@SuppressWarnings("restricted")
public final class AnonymousMemory implements AutoCloseable {

    private static final int PROT_READ = 0x1;
    private static final int PROT_WRITE = 0x2;
    private static final int MAP_PRIVATE = 0x02;
    private static final int MAP_ANONYMOUS = 0x20;
    /** include/uapi/asm-generic/mman-common.h */
    private static final int MADV_MERGEABLE = 12;
    private static final int MADV_NOHUGEPAGE = 15;
    private static final long MAP_FAILED = -1L;

    private static final Linker LINKER = Linker.nativeLinker();
    private static final StructLayout CALL_STATE = Linker.Option.captureStateLayout();
    private static final VarHandle ERRNO = CALL_STATE.varHandle(MemoryLayout.PathElement.groupElement("errno"));
    private static final Linker.Option CAPTURE_ERRNO = Linker.Option.captureCallState("errno");

    /** {@code void *mmap(void *addr, size_t length, int prot, int flags, int fd, off_t offset)} */
    private static final MethodHandle MMAP = LINKER.downcallHandle(
            LINKER.defaultLookup().find("mmap").orElseThrow(),
            FunctionDescriptor.of(ValueLayout.ADDRESS, ValueLayout.ADDRESS, ValueLayout.JAVA_LONG,
                    ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.JAVA_LONG),
            CAPTURE_ERRNO);
    /** {@code int madvise(void *addr, size_t length, int advice)} */
    private static final MethodHandle MADVISE = LINKER.downcallHandle(
            LINKER.defaultLookup().find("madvise").orElseThrow(),
            FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.JAVA_LONG,
                    ValueLayout.JAVA_INT),
            CAPTURE_ERRNO);
    /** {@code int munmap(void *addr, size_t length)} */
    private static final MethodHandle MUNMAP = LINKER.downcallHandle(
            LINKER.defaultLookup().find("munmap").orElseThrow(),
            FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.JAVA_LONG));

    private final MemorySegment memory;
    private boolean closed;

    private AnonymousMemory(MemorySegment memory) {
        this.memory = memory;
    }

    /**
     * Maps {@code bytes} (a positive multiple of 4096) of private anonymous memory, readable and
     * writable, zero-filled, not yet resident.
     *
     * @throws IllegalStateException with errno if the kernel refuses (ENOMEM: not enough address space)
     */
    public static AnonymousMemory map(long bytes) {
        if (bytes <= 0 || bytes % 4096 != 0) {
            throw new IllegalArgumentException("bytes must be a positive multiple of 4096, not " + bytes);
        }
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment state = arena.allocate(CALL_STATE);
            // Safe: a new mapping at an address the kernel picks; no existing memory is touched, and the
            // result is checked against MAP_FAILED before it is used.
            MemorySegment address = (MemorySegment) MMAP.invokeExact(state, MemorySegment.NULL, bytes,
                    PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0L);
            if (address.address() == MAP_FAILED) {
                throw new IllegalStateException("mmap of " + bytes + " bytes failed: errno "
                        + (int) ERRNO.get(state, 0L));
            }
            // Safe: the kernel just mapped exactly this range for this object, which alone unmaps it.
            return new AnonymousMemory(address.reinterpret(bytes));
        } catch (IllegalStateException e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException("mmap failed: " + t, t);
        }
    }

    /** The mapping; valid until {@link #close()}. */
    public MemorySegment segment() {
        requireOpen();
        return memory;
    }

    /** Offers the whole mapping to kernel KSM ({@code MADV_MERGEABLE}). */
    public void adviseMergeable() {
        advise(MADV_MERGEABLE, "MADV_MERGEABLE");
    }

    /**
     * Asks for 4 KiB pages only ({@code MADV_NOHUGEPAGE}), so KSM sees the pages as written rather than
     * transparent huge pages it must split first (and whose all-zero parts a split maps to the zero page
     * outside KSM's counters).
     */
    public void adviseNoHugePage() {
        advise(MADV_NOHUGEPAGE, "MADV_NOHUGEPAGE");
    }

    private void advise(int advice, String name) {
        requireOpen();
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment state = arena.allocate(CALL_STATE);
            // Safe: the range is this object's own live mapping; advice changes no byte of it.
            int result = (int) MADVISE.invokeExact(state, memory, memory.byteSize(), advice);
            if (result != 0) {
                throw new IllegalStateException("madvise(" + name + ") failed: errno " + (int) ERRNO.get(state, 0L)
                        + (advice == MADV_MERGEABLE ? " (EINVAL: this kernel has no KSM)" : ""));
            }
        } catch (IllegalStateException e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException("madvise failed: " + t, t);
        }
    }

    /** Unmaps the memory; the segment must not be used afterwards. Idempotent. */
    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        try {
            // Safe: this object's own mapping, unmapped once; callers are told not to use the segment after.
            int ignored = (int) MUNMAP.invokeExact(memory, memory.byteSize());
        } catch (Throwable t) {
            throw new IllegalStateException("munmap failed: " + t, t);
        }
    }

    private void requireOpen() {
        if (closed) {
            throw new IllegalStateException("the mapping is closed");
        }
    }
}
