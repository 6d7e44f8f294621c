package io.samepage.linux;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Objects;

/**
 * The memfd and mapping calls behind mapped guest memory: a memfd holds the frames; a whole-file
 * shared mapping (the frame window) reads and writes them by index; a reserved range per guest holds
 * one {@code MAP_SHARED|MAP_FIXED} mapping per guest page, each of some frame's file offset.
 *
 * <p>The one dangerous call is {@code MAP_FIXED}, which silently replaces whatever is mapped at the
 * address. {@link #map} therefore takes the reservation as a segment and a page offset inside it,
 * checks them, and computes the address itself: it can only ever replace a page of a range this
 * package reserved, whose segment is still alive.
 *
 * <p>Every method returns its result or {@code -errno}. Stateless and thread safe.
 */
// Restricted FFM methods are this package's purpose; each call site says why it is safe.
@SuppressWarnings("restricted")
public final class MemfdCalls {

    public static final long PAGE = 4096;

    private static final int MFD_CLOEXEC = 0x1;
    private static final int FALLOC_FL_KEEP_SIZE = 0x1;
    private static final int FALLOC_FL_PUNCH_HOLE = 0x2;
    /** {@code struct stat} is 144 bytes on x86-64 and AArch64, {@code st_blocks} (512-byte units) at 64. */
    private static final long STAT_BYTES = 144;
    private static final long STAT_BLOCKS = 64;
    /** The flags of a reservation's mappings: private, anonymous, and costing no memory or commit charge. */
    private static final int RESERVATION = Abi.MAP_PRIVATE | Abi.MAP_ANONYMOUS | Abi.MAP_NORESERVE;

    /** Null if every C library function this class calls is bound, else why not. */
    private static final String UNAVAILABLE = Libc.unavailable("KVM and memfd frames", "memfd_create", "ftruncate",
            "close", "mmap", "munmap", "mprotect", "madvise", "fallocate", "fstat");

    private MemfdCalls() {
    }

    /** Null if these calls can be made here, else why not. */
    public static String unavailableReason() {
        return UNAVAILABLE;
    }

    /** A close-on-exec memfd of {@code bytes} (a hole: nothing allocated yet): its fd, or {@code -errno}. */
    public static int create(String name, long bytes) {
        int fd;
        try (Arena arena = Arena.ofConfined()) {
            // Safe: a NUL-terminated copy of name, alive for the call.
            fd = Libc.memfdCreate(arena.allocateFrom(name), MFD_CLOEXEC);
        }
        if (fd < 0) {
            return fd;
        }
        // Safe: sizes the memfd just created; nothing is mapped yet.
        int sized = Libc.ftruncate(fd, bytes);
        if (sized < 0) {
            Libc.close(fd);
            return sized;
        }
        return fd;
    }

    public static int close(int fd) {
        return Libc.close(fd);
    }

    /**
     * Reserves {@code bytes} of address space, {@code PROT_NONE} and {@code MAP_NORESERVE}: it costs
     * no memory and faults on any access until pages are mapped into it. Unmapped, with everything
     * later mapped inside it, when {@code arena} closes. Null if the kernel refused.
     */
    public static MemorySegment reserve(long bytes, Arena arena) {
        // Safe: a null hint never replaces an existing mapping.
        long address = Libc.mmap(0L, bytes, Abi.PROT_NONE, RESERVATION, -1, 0L);
        return address < 0 ? null : owned(address, bytes, arena);
    }

    /**
     * Reserves {@code [offset, + length)} of {@code range} again, as {@link #reserve} reserved it
     * ({@code PROT_NONE}, {@code MAP_NORESERVE}), replacing whatever is mapped there ({@code MAP_FIXED}):
     * for pages a refused {@link #map} may have left unmapped, so that no other mapping of this process
     * is placed in them. Returns 0 or {@code -errno}.
     *
     * @param range a live reservation from {@link #reserve}
     */
    public static int reserveAgain(MemorySegment range, long offset, long length) {
        long address = pagesAddress(range, offset, length);
        // Safe: as in map, MAP_FIXED replaces only pages of a live reservation of ours (pagesAddress), and
        // what it puts there cannot be read or written.
        long mapped = Libc.mmap(address, length, Abi.PROT_NONE, RESERVATION | Abi.MAP_FIXED, -1, 0L);
        return mapped < 0 ? (int) mapped : 0;
    }

    /**
     * {@link #reserveAgain}, but only where nothing at all is mapped ({@code MAP_FIXED_NOREPLACE}): for
     * pages that may be a hole another mapping of this process has taken since, which must never be
     * replaced. Returns 0, or {@code -EEXIST} (nothing changed) if any of the pages is mapped, or another
     * {@code -errno}.
     *
     * @param range a live reservation from {@link #reserve}
     */
    public static int reserveIfFree(MemorySegment range, long offset, long length) {
        long address = pagesAddress(range, offset, length);
        // Safe: MAP_FIXED_NOREPLACE never replaces a mapping. A kernel older than 4.17 ignores the flag and
        // takes the address as a hint; what it placed elsewhere instead is unmapped again, never touched.
        long mapped = Libc.mmap(address, length, Abi.PROT_NONE, RESERVATION | Abi.MAP_FIXED_NOREPLACE, -1, 0L);
        if (mapped >= 0 && mapped != address) {
            Libc.munmap(mapped, length);
            return -Abi.EEXIST;
        }
        return mapped < 0 ? (int) mapped : 0;
    }

    /**
     * Unmaps {@code [offset, + length)} of {@code range}: part of a reservation that cannot be unmapped
     * whole, because some of its pages may hold another mapping of this process now. The caller never
     * reads, writes or maps those pages again, and keeps the range's arena open: closing it would unmap
     * the whole range. Returns 0 or {@code -errno}.
     *
     * @param range a live reservation from {@link #reserve}
     */
    public static int unmap(MemorySegment range, long offset, long length) {
        long address = pagesAddress(range, offset, length);
        // Safe: pages of a live reservation of ours (pagesAddress), which the caller no longer uses.
        return Libc.munmap(address, length);
    }

    /**
     * Maps the whole memfd read-write and shared: the frame window. Unmapped when {@code arena} closes.
     * Null if the kernel refused.
     */
    public static MemorySegment mapWindow(int fd, long bytes, Arena arena) {
        // Safe: a null hint never replaces an existing mapping; bytes is the memfd's size.
        long address = Libc.mmap(0L, bytes, Abi.PROT_READ | Abi.PROT_WRITE, Abi.MAP_SHARED, fd, 0L);
        return address < 0 ? null : owned(address, bytes, arena);
    }

    /**
     * Maps {@code length} bytes of {@code fd} from {@code fileOffset} over {@code [offset, + length)} of
     * {@code range}, shared, read-write or read-only. Replaces atomically what was there: a reader never
     * sees a hole.
     *
     * @param range a live reservation from {@link #reserve}
     */
    public static int map(MemorySegment range, long offset, long length, int fd, long fileOffset, boolean writable) {
        long address = pagesAddress(range, offset, length);
        int prot = writable ? Abi.PROT_READ | Abi.PROT_WRITE : Abi.PROT_READ;
        // Safe: with MAP_FIXED the kernel replaces the pages at address, which pagesAddress proved are
        // pages of a live reservation of ours; nothing else of this process can be mapped there.
        long mapped = Libc.mmap(address, length, prot, Abi.MAP_SHARED | Abi.MAP_FIXED, fd, fileOffset);
        return mapped < 0 ? (int) mapped : 0;
    }

    /**
     * Advises {@code [offset, + length)} of {@code range} {@code MADV_NOHUGEPAGE}: a fault through the
     * mappings there allocates the memfd's memory in 4 KiB pages, not in a huge (or other large) folio,
     * whatever {@code transparent_hugepage/shmem_enabled} says, so punching out one frame frees its page.
     * The advice belongs to the mapping, not the file: a later {@link #map} over the range makes a new,
     * unadvised mapping. Returns 0, or {@code -errno}; a kernel without transparent huge pages refuses the
     * advice ({@code EINVAL}), which is then moot and counts as done.
     *
     * @param range a live mapping from {@link #mapWindow} or a live reservation from {@link #reserve}
     */
    public static int adviseSmallPages(MemorySegment range, long offset, long length) {
        pagesAddress(range, offset, length);
        // Safe: a checked slice of a live mapping of ours; the advice changes no byte of it.
        int advised = Libc.madvise(range.asSlice(offset, length), Abi.MADV_NOHUGEPAGE);
        return advised == -Abi.EINVAL ? 0 : advised;
    }

    /** Makes page {@code offset} of {@code range} read-only (or read-write again), keeping its frame. */
    public static int protect(MemorySegment range, long offset, boolean writable) {
        long address = pagesAddress(range, offset, PAGE);
        // Safe: one page of a live reservation of ours; the caller stops writing it from Java first.
        return Libc.mprotect(address, PAGE, writable ? Abi.PROT_READ | Abi.PROT_WRITE : Abi.PROT_READ);
    }

    /** Frees the memory behind {@code [offset, + length)} of the memfd; the file keeps its size. */
    public static int punchHole(int fd, long offset, long length) {
        // Safe: only the file changes; every mapping of the range reads zeros afterwards, none faults.
        return Libc.fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, offset, length);
    }

    /** The memory the memfd holds now ({@code st_blocks * 512}), or {@code -errno}. */
    public static long allocatedBytes(int fd) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment stat = arena.allocate(STAT_BYTES, 8);
            // Safe: stat is sizeof(struct stat), written by the kernel, alive for the call.
            int result = Libc.fstat(fd, stat);
            return result < 0 ? result : stat.get(ValueLayout.JAVA_LONG, STAT_BLOCKS) * 512;
        }
    }

    private static long pagesAddress(MemorySegment range, long offset, long length) {
        Objects.checkFromIndexSize(offset, length, range.byteSize());
        if (offset % PAGE != 0 || length % PAGE != 0 || length == 0 || !range.scope().isAlive()) {
            throw new IllegalArgumentException("not a page of a live reservation: offset " + offset);
        }
        return range.address() + offset;
    }

    private static MemorySegment owned(long address, long bytes, Arena arena) {
        // Safe: exactly the range just mapped; the arena's cleanup unmaps it after the arena has
        // invalidated every segment of it, so no Java access can follow the munmap.
        return MemorySegment.ofAddress(address).reinterpret(bytes, arena, unused -> Libc.munmap(address, bytes));
    }
}
