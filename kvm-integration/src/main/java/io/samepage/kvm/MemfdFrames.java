package io.samepage.kvm;

import io.samepage.linux.MemfdCalls;
import java.io.BufferedReader;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;

/**
 * Host frames in a memfd, for physical sharing between guests: frame {@code f} is the file's 4 KiB at
 * offset {@code f * 4096}. The whole file is mapped once, shared and read-write (the frame window),
 * through which the engine reads, writes, hashes and copies frames by index; guests see frames through
 * {@link MappedGuestMemory}, whose guest pages are shared mappings of frames' file offsets. A write
 * through the window is seen by every guest page mapping that frame: the engine breaks sharing (copies
 * to a fresh frame and remaps the writer) before it writes a shared frame.
 *
 * <p>The file starts as one hole: a frame costs memory from its first write until {@link #release}
 * punches it out ({@code fallocate(PUNCH_HOLE)}), which frees its memory for every mapping at once and
 * leaves it reading as zeros. {@link #allocatedBytes()} (the file's blocks) and
 * {@link #rssShmemBytes()} (the process's resident shared memory) show it.
 *
 * <p>4 KiB pages only: where {@code /sys/kernel/mm/transparent_hugepage/shmem_enabled} is {@code always}
 * (or {@code within_size}), a fault through a mapping of the memfd allocates a whole huge folio (2 MiB, or
 * a smaller large one), and punching out one frame of it frees nothing: the kernel zeroes the frame and
 * keeps the folio if it cannot split it. Measured with {@code always}: 16 huge folios for three guests of
 * 8 MiB, and 1,023 frames punched out of 1,024 leaving 100 to 320 KiB allocated instead of 4 KiB. So every mapping
 * made here that spans more than one page, the frame window and a guest's runs, is advised
 * {@code MADV_NOHUGEPAGE}; a one-page mapping cannot hold a larger folio ({@link MappedGuestMemory} says
 * which remaps are advised). The advice is the kernel's per-mapping opt-out, and it wins over
 * {@code shmem_enabled} at fault time, {@code force} included (Linux 6.18: {@code vma_thp_disabled} is
 * checked before the global setting; measured: no huge folio with {@code force}). What it cannot reach is an allocation that goes through no mapping
 * ({@code write(2)}, an allocating {@code fallocate}), which {@code force} or {@code always} make huge:
 * this class never writes the memfd that way (its only {@code fallocate} punches holes). Nor does it
 * stop another process mapping the memfd without the advice; no other process is handed the fd.
 *
 * <p>Rejected: anonymous memory with one private mapping per guest, as in the software page table.
 * There a frame cannot be mapped into two guests' ranges at once, so a merge could only copy, and
 * sharing would save nothing physical.
 *
 * <p>Thread safe: frame reads and writes need no lock (callers keep one writer per frame); creating
 * guest memory and closing are serialized. {@link #close()} closes the guest memories made here.
 */
public final class MemfdFrames implements AutoCloseable {

    /** Bytes per frame: one x86 page. */
    public static final int FRAME_BYTES = 4096;

    private static final Path SELF_STATUS = Path.of("/proc/self/status");

    private final String name;
    private final int frames;
    private final int fd;
    private final Arena arena;
    private final MemorySegment window;
    private final MappingBudget budget;
    private final GuestRangeCalls rangeCalls;
    private final List<MappedGuestMemory> guests = new ArrayList<>();
    private volatile boolean closed;

    private MemfdFrames(String name, int frames, int fd, Arena arena, MemorySegment window, MappingBudget budget,
                        GuestRangeCalls rangeCalls) {
        this.name = name;
        this.frames = frames;
        this.fd = fd;
        this.arena = arena;
        this.window = window;
        this.budget = budget;
        this.rangeCalls = rangeCalls;
    }

    /** {@link #create(String, int, MappingBudget)} under {@link MappingBudget#host()}. */
    public static MemfdFrames create(String name, int frames) {
        return create(name, frames, MappingBudget.host());
    }

    /**
     * A memfd named {@code name} (shown in {@code /proc/PID/maps} as {@code /memfd:name}) of
     * {@code frames} frames, none allocated yet, and its frame window.
     *
     * @param budget the mapping budget every remap of guest memory made here is charged to
     */
    public static MemfdFrames create(String name, int frames, MappingBudget budget) {
        return create(name, frames, budget, GuestRangeCalls.KERNEL);
    }

    /**
     * {@link #create(String, int, MappingBudget)} whose guest memories map and protect their pages through
     * {@code rangeCalls}: a test's stand-in for the kernel.
     */
    static MemfdFrames create(String name, int frames, MappingBudget budget, GuestRangeCalls rangeCalls) {
        Objects.requireNonNull(budget, "budget");
        if (frames < 1) {
            throw new IllegalArgumentException("a memfd needs at least one frame, not " + frames);
        }
        String unavailable = MemfdCalls.unavailableReason();
        if (unavailable != null) {
            throw new KvmException(KvmException.Kind.UNAVAILABLE, unavailable);
        }
        long bytes = (long) frames * FRAME_BYTES;
        int fd = MemfdCalls.create(name, bytes);
        if (fd < 0) {
            throw KvmException.refused("memfd_create/ftruncate of " + bytes + " bytes", fd);
        }
        Arena arena = Arena.ofShared();
        MemorySegment window = MemfdCalls.mapWindow(fd, bytes, arena);
        if (window == null) {
            arena.close();
            MemfdCalls.close(fd);
            throw new KvmException(KvmException.Kind.REFUSED, "mapping the frame window of " + bytes
                    + " bytes failed: out of address space, or vm.max_map_count reached");
        }
        int advised = MemfdCalls.adviseSmallPages(window, 0, bytes);
        if (advised < 0) {
            arena.close();
            MemfdCalls.close(fd);
            throw KvmException.refused("madvise(MADV_NOHUGEPAGE) of the frame window of " + bytes + " bytes", advised);
        }
        try {
            return new MemfdFrames(name, frames, fd, arena, window, budget, rangeCalls);
        } catch (RuntimeException | Error e) {      // an OutOfMemoryError: nothing else would unmap and close them
            arena.close();
            MemfdCalls.close(fd);
            throw e;
        }
    }

    public String name() {
        return name;
    }

    /** How many frames the file holds, allocated or not. */
    public int frames() {
        return frames;
    }

    /** Copies {@code length} bytes from {@code offset} in {@code frame} into {@code dst}. */
    public void read(int frame, int offset, byte[] dst, int dstOffset, int length) {
        MemorySegment.copy(window, ValueLayout.JAVA_BYTE, span(frame, offset, length), dst, dstOffset, length);
    }

    /**
     * Copies {@code length} bytes of {@code src} into {@code frame} at {@code offset}, allocating the
     * frame's memory if it was a hole. Every guest page mapping the frame sees the bytes.
     */
    public void write(int frame, int offset, byte[] src, int srcOffset, int length) {
        MemorySegment.copy(src, srcOffset, window, ValueLayout.JAVA_BYTE, span(frame, offset, length), length);
    }

    /** Copies frame {@code from} whole into frame {@code to}: the copy of a break. */
    public void copy(int from, int to) {
        MemorySegment.copy(window, span(from, 0, FRAME_BYTES), window, span(to, 0, FRAME_BYTES), FRAME_BYTES);
    }

    /** True if the two frames hold the same bytes: the full compare every merge follows. */
    public boolean equal(int a, int b) {
        long first = span(a, 0, FRAME_BYTES);
        long second = span(b, 0, FRAME_BYTES);
        return MemorySegment.mismatch(window, first, first + FRAME_BYTES, window, second, second + FRAME_BYTES) < 0;
    }

    /**
     * Frees {@code frame}'s memory: afterwards it reads as zeros in the window and in every guest page
     * still mapping it, and costs nothing until written again. Release a merged-away frame once no guest
     * page maps it; release the frame of a zero guest page in place (the page keeps its mapping, reads
     * zeros, and its next write allocates the frame again), which costs no remap.
     */
    public void release(int frame) {
        int result = MemfdCalls.punchHole(fd(), span(frame, 0, FRAME_BYTES), FRAME_BYTES);
        if (result < 0) {
            throw KvmException.refused("fallocate(PUNCH_HOLE) of frame " + frame, result);
        }
    }

    /** The memory the memfd holds now: its allocated blocks ({@code st_blocks * 512}). */
    public long allocatedBytes() {
        long bytes = MemfdCalls.allocatedBytes(fd());
        if (bytes < 0) {
            throw KvmException.refused("fstat of memfd " + name, (int) bytes);
        }
        return bytes;
    }

    /**
     * Guest memory of {@code guestPages} pages over these frames, every page unmapped yet (it reads as
     * zeros and cannot be written until {@link MappedGuestMemory#map} gives it a frame). It costs address
     * space only.
     */
    public synchronized MappedGuestMemory mapGuest(int guestPages) {
        fd();
        MappedGuestMemory guest = MappedGuestMemory.reserve(this, guestPages, rangeCalls);
        try {
            guests.add(guest);
        } catch (RuntimeException | Error e) {      // unlisted, the range would outlive even this memfd's close
            try {
                guest.close();
            } catch (RuntimeException | Error c) {
                if (c != e) {      // one preallocated OutOfMemoryError may be both
                    e.addSuppressed(c);
                }
            }
            throw e;
        }
        return guest;
    }

    /**
     * This process's resident shared memory, {@code RssShmem} of {@code /proc/self/status}, in bytes:
     * memfd frames (and any other shared memory) it has mapped and touched, counted once per mapping
     * that touched them. A frame read through the window and through a guest page counts twice (measured:
     * 1024 frames written through the window and read through a guest, 8 MiB); {@link #allocatedBytes()}
     * counts each frame once.
     */
    public static long rssShmemBytes() {
        // Latin-1: the Name line is the process's name, bytes that need not be UTF-8.
        try (BufferedReader status = Files.newBufferedReader(SELF_STATUS, java.nio.charset.StandardCharsets.ISO_8859_1)) {
            for (String line = status.readLine(); line != null; line = status.readLine()) {
                if (line.startsWith("RssShmem:")) {
                    return Long.parseLong(line.substring("RssShmem:".length()).replace("kB", "").trim()) * 1024;
                }
            }
        } catch (IOException | NumberFormatException e) {
            throw new KvmException(KvmException.Kind.UNAVAILABLE, "cannot read RssShmem from " + SELF_STATUS
                    + ": " + e.getMessage());
        }
        throw new KvmException(KvmException.Kind.UNAVAILABLE, SELF_STATUS + " has no RssShmem line (Linux 4.5+)");
    }

    /**
     * Closes every guest memory made here, unmaps the frame window and closes the memfd. Allocates nothing:
     * an {@link OutOfMemoryError} cannot stop it with the memfd left open (the engine closes it once).
     */
    @Override
    public synchronized void close() {
        if (!closed) {
            for (int i = guests.size() - 1; i >= 0; i--) {
                guests.get(i).close();      // forgets it: the list loses its last element, no copy needed
            }
            closed = true;
            arena.close();
            MemfdCalls.close(fd);
        }
    }

    /** The memfd, for mapping frames into guest memory; throws once closed, so a reused fd is never mapped. */
    int fd() {
        if (closed) {
            throw new IllegalStateException("memfd frames " + name + " are closed");
        }
        return fd;
    }

    /** Called by a guest memory once it has closed. */
    synchronized void forget(MappedGuestMemory guest) {
        guests.remove(guest);
    }

    MappingBudget budget() {
        return budget;
    }

    /** The frame window: the region of the engine's frame pool when these frames back it ({@link MemfdBacking}). */
    MemorySegment window() {
        return window;
    }

    /** {@link #release} of the frames {@code [first, + count)} with one {@code fallocate}. */
    void releaseRun(int first, int count) {
        Objects.checkFromIndexSize(first, count, frames);
        int result = MemfdCalls.punchHole(fd(), (long) first * FRAME_BYTES, (long) count * FRAME_BYTES);
        if (result < 0) {
            throw KvmException.refused("fallocate(PUNCH_HOLE) of frames " + first + ".." + (first + count - 1), result);
        }
    }

    /** The window offset of {@code [offset, + length)} in {@code frame}, bounds checked. */
    private long span(int frame, int offset, int length) {
        Objects.checkIndex(frame, frames);
        Objects.checkFromIndexSize(offset, length, FRAME_BYTES);
        return (long) frame * FRAME_BYTES + offset;
    }
}
