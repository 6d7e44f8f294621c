package io.samepage.linux;

import java.lang.foreign.MemorySegment;

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

    /** Null if every C library function this class calls is bound, else why not. */
    private static final String UNAVAILABLE = Libc.unavailable("anonymous memory mappings", "mmap", "madvise",
            "munmap");

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
        if (UNAVAILABLE != null) {
            throw new IllegalStateException(UNAVAILABLE);
        }
        // Safe: a new mapping at an address the kernel picks; no existing memory is touched, and the
        // result is checked against MAP_FAILED (-errno here) before it is used.
        long address = Libc.mmap(0L, bytes, Abi.PROT_READ | Abi.PROT_WRITE, Abi.MAP_PRIVATE | Abi.MAP_ANONYMOUS,
                -1, 0L);
        if (address < 0) {
            throw new IllegalStateException("mmap of " + bytes + " bytes failed: errno " + -address);
        }
        // Safe: the kernel just mapped exactly this range for this object, which alone unmaps it.
        return new AnonymousMemory(MemorySegment.ofAddress(address).reinterpret(bytes));
    }

    /** The mapping; valid until {@link #close()}. */
    public MemorySegment segment() {
        requireOpen();
        return memory;
    }

    /** Offers the whole mapping to kernel KSM ({@code MADV_MERGEABLE}). */
    public void adviseMergeable() {
        advise(Abi.MADV_MERGEABLE, "MADV_MERGEABLE");
    }

    /**
     * Asks for 4 KiB pages only ({@code MADV_NOHUGEPAGE}), so KSM sees the pages as written rather than
     * transparent huge pages it must split first (and whose all-zero parts a split maps to the zero page
     * outside KSM's counters).
     */
    public void adviseNoHugePage() {
        advise(Abi.MADV_NOHUGEPAGE, "MADV_NOHUGEPAGE");
    }

    private void advise(int advice, String name) {
        requireOpen();
        // Safe: the range is this object's own live mapping; advice changes no byte of it.
        int result = Libc.madvise(memory, advice);
        if (result != 0) {
            throw new IllegalStateException("madvise(" + name + ") failed: errno " + -result
                    + (advice == Abi.MADV_MERGEABLE ? " (EINVAL: this kernel has no KSM)" : ""));
        }
    }

    /** Unmaps the memory; the segment must not be used afterwards. Idempotent. */
    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        // Safe: this object's own mapping, unmapped once; callers are told not to use the segment after.
        Libc.munmap(memory.address(), memory.byteSize());
    }

    private void requireOpen() {
        if (closed) {
            throw new IllegalStateException("the mapping is closed");
        }
    }
}
