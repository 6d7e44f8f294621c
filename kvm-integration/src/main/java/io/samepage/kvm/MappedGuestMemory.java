package io.samepage.kvm;

import io.samepage.linux.MemfdCalls;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Arrays;
import java.util.BitSet;
import java.util.Objects;

/**
 * One guest's memory as host mappings of {@link MemfdFrames}: a contiguous reserved range of address
 * space in which guest page {@code p} is a {@code MAP_SHARED|MAP_FIXED} mapping of one frame, read-write
 * or read-only. This range is what a {@link KvmVm} slot hands to KVM, so the guest runs directly on the
 * frames.
 *
 * <p>The operations of the engine: {@link #map} points a guest page at a frame (a merge: read-only onto
 * the shared frame; a break: read-write onto the writer's fresh copy) and {@link #protect} changes only
 * its protection (read-only before a merge compare; read-write again for the last mapper). Each remap
 * replaces the old mapping atomically, so KVM and readers never see a hole, and is charged to the
 * frames' {@link MappingBudget} first: where the budget is spent it throws
 * {@link KvmException.Kind#MAPPING_LIMIT} and maps nothing.
 *
 * <p>4 KiB pages only ({@link MemfdFrames} says why): a mapping that could hold a large folio is advised
 * {@code MADV_NOHUGEPAGE}. One of a single page cannot; but the kernel merges adjacent mappings whose file
 * offsets continue each other and whose flags agree into one, so a remap is advised when it maps more than
 * one page or continues a neighbour's frame (the neighbour first, if it was left unadvised, so that no
 * unadvised mapping of two pages ever exists). A scattered remap, the common merge onto some other frame,
 * costs no syscall more. Every mapping of more than one page is thus advised, and adjacent advised ones
 * still merge. A run is advised just after it is mapped: map runs before a guest runs.
 *
 * <p>Java code never writes a read-only page: {@link #write} refuses it (the engine breaks sharing and
 * remaps first) instead of faulting, and a page not mapped yet reads as zeros without being touched.
 * A guest write to a read-only page exits from {@link Vcpu#run()} instead.
 *
 * <p>Thread safe: every operation holds this memory's lock, so a Java write never races a remap that
 * makes its page read-only. Running vCPUs reach the pages through the kernel, not through this lock.
 */
public final class MappedGuestMemory implements AutoCloseable {

    /** Bytes per guest page. */
    public static final int PAGE_BYTES = MemfdFrames.FRAME_BYTES;

    private static final int UNMAPPED = -1;

    private final MemfdFrames frames;
    private final GuestRangeCalls calls;
    private final int guestPages;
    private final Arena arena;
    private final MemorySegment range;
    private final int[] frameOf;
    private final BitSet writable;
    /** Pages whose kernel mapping is advised {@code MADV_NOHUGEPAGE}; the others are one-page mappings. */
    private final BitSet advised;
    private boolean closed;

    private MappedGuestMemory(MemfdFrames frames, GuestRangeCalls calls, int guestPages, Arena arena,
                              MemorySegment range) {
        this.frames = frames;
        this.calls = calls;
        this.guestPages = guestPages;
        this.arena = arena;
        this.range = range;
        this.frameOf = new int[guestPages];
        this.writable = new BitSet(guestPages);
        this.advised = new BitSet(guestPages);
        Arrays.fill(frameOf, UNMAPPED);
    }

    /** Reserves the range of {@code guestPages} pages, every page unmapped; {@code calls} maps and protects them. */
    static MappedGuestMemory reserve(MemfdFrames frames, int guestPages, GuestRangeCalls calls) {
        if (guestPages < 1) {
            throw new IllegalArgumentException("guest memory needs at least one page, not " + guestPages);
        }
        Arena arena = Arena.ofShared();
        MemorySegment range = MemfdCalls.reserve((long) guestPages * PAGE_BYTES, arena);
        if (range == null) {
            arena.close();
            throw new KvmException(KvmException.Kind.REFUSED, "reserving " + guestPages
                    + " guest pages of address space failed: out of address space, or vm.max_map_count reached");
        }
        return new MappedGuestMemory(frames, calls, guestPages, arena, range);
    }

    public int guestPages() {
        return guestPages;
    }

    /** Maps guest page {@code guestPage} onto {@code frame}: {@link #map(int, int, int, boolean)} of one page. */
    public void map(int guestPage, int frame, boolean writable) {
        map(guestPage, frame, 1, writable);
    }

    /**
     * Maps guest pages {@code [firstGuestPage, + count)} onto frames {@code [firstFrame, + count)} in one
     * mapping, replacing what they mapped. A run costs one kernel mapping however long it is: lay out a
     * new guest this way, one frame per page in order.
     *
     * @throws KvmException {@link KvmException.Kind#MAPPING_LIMIT} before the limit, mapping nothing;
     *                      {@link KvmException.Kind#REFUSED} if the kernel refuses the mapping, or refuses
     *                      the {@code MADV_NOHUGEPAGE} advice after it: then the pages <em>are</em> mapped,
     *                      unadvised (the message says "(mapped)")
     */
    public synchronized void map(int firstGuestPage, int firstFrame, int count, boolean writable) {
        frames.budget().charge("guest page " + firstGuestPage);
        int advice = remap(firstGuestPage, firstFrame, count, writable);
        if (advice < 0) {
            throw KvmException.refused("madvise(MADV_NOHUGEPAGE) of guest pages " + firstGuestPage + ".."
                    + (firstGuestPage + count - 1) + " (mapped)", advice);
        }
    }

    /**
     * Maps one guest page onto {@code frame}, counted but never refused by the budget: a copy-on-write
     * break, which a guest waiting on a write exit cannot do without, or the remap of a merge whose
     * room the budget granted before its compare ({@link MappingBudget#hasRoomFor}).
     */
    synchronized void remapAdmitted(int guestPage, int frame, boolean writable) {
        frames.budget().chargeUnrefusable();
        remap(guestPage, frame, 1, writable);      // a refused advice leaves the page unadvised, retried later
    }

    /**
     * {@link #protect} counted but never refused by the budget: read-only for a merge compare whose room
     * the budget granted ({@link MappingBudget#hasRoomFor}), or writable again after it found no twin.
     */
    synchronized void protectAdmitted(int guestPage, boolean writable) {
        frames.budget().chargeUnrefusable();
        changeProtection(guestPage, writable);
    }

    /** Maps the pages, advising them where the kernel could make them part of a larger mapping: 0 or -errno of the advice. */
    private int remap(int firstGuestPage, int firstFrame, int count, boolean writable) {
        checkOpen();
        Objects.checkFromIndexSize(firstGuestPage, count, guestPages);
        Objects.checkFromIndexSize(firstFrame, count, frames.frames());
        if (count < 1) {
            throw new IllegalArgumentException("map at least one page, not " + count);
        }
        int below = firstGuestPage - 1;
        int above = firstGuestPage + count;
        boolean continuesBelow = continues(below, firstFrame - 1);
        boolean continuesAbove = continues(above, firstFrame + count);
        boolean advise = count > 1 || continuesBelow || continuesAbove;
        int advice = 0;
        if (continuesBelow && !advised.get(below)) {
            advice = advise(below, 1);
        }
        if (continuesAbove && !advised.get(above)) {
            advice = Math.min(advice, advise(above, 1));
        }
        int result = calls.map(range, (long) firstGuestPage * PAGE_BYTES, (long) count * PAGE_BYTES,
                frames.fd(), (long) firstFrame * PAGE_BYTES, writable);
        if (result < 0) {
            throw KvmException.refused("mmap(MAP_SHARED|MAP_FIXED) of guest page " + firstGuestPage + " onto frame "
                    + firstFrame, result);
        }
        for (int i = 0; i < count; i++) {
            frameOf[firstGuestPage + i] = firstFrame + i;
        }
        this.writable.set(firstGuestPage, firstGuestPage + count, writable);
        advised.clear(firstGuestPage, firstGuestPage + count);      // a new mapping: unadvised
        return advise ? Math.min(advice, advise(firstGuestPage, count)) : advice;
    }

    /** True if guest page {@code page} exists and maps {@code frame}: a mapping there may merge with one of the next frame. */
    private boolean continues(int page, int frame) {
        return page >= 0 && page < guestPages && frame >= 0 && frameOf[page] == frame;
    }

    private int advise(int firstGuestPage, int count) {
        int result = calls.adviseSmallPages(range, (long) firstGuestPage * PAGE_BYTES, (long) count * PAGE_BYTES);
        if (result == 0) {
            advised.set(firstGuestPage, firstGuestPage + count);
        }
        return result;
    }

    /** Makes mapped guest page {@code guestPage} read-only or read-write, on the frame it maps. */
    public synchronized void protect(int guestPage, boolean writable) {
        frames.budget().charge("guest page " + guestPage);
        changeProtection(guestPage, writable);
    }

    private void changeProtection(int guestPage, boolean writable) {
        checkOpen();
        Objects.checkIndex(guestPage, guestPages);
        if (frameOf[guestPage] == UNMAPPED) {
            throw new IllegalStateException("guest page " + guestPage + " maps no frame yet");
        }
        int result = calls.protect(range, (long) guestPage * PAGE_BYTES, writable);
        if (result < 0) {
            throw KvmException.refused("mprotect of guest page " + guestPage, result);
        }
        this.writable.set(guestPage, writable);
    }

    /** The frame guest page {@code guestPage} maps, or -1 if none yet. */
    public synchronized int frame(int guestPage) {
        Objects.checkIndex(guestPage, guestPages);
        return frameOf[guestPage];
    }

    /** True if guest page {@code guestPage} is mapped read-write (writable from Java and by the guest). */
    public synchronized boolean writable(int guestPage) {
        Objects.checkIndex(guestPage, guestPages);
        return writable.get(guestPage);
    }

    /** Copies guest memory {@code [guestAddress, + length)} into {@code dst}; pages mapping no frame read as zeros. */
    public synchronized void read(long guestAddress, byte[] dst, int dstOffset, int length) {
        checkOpen();
        Objects.checkFromIndexSize(guestAddress, length, (long) guestPages * PAGE_BYTES);
        Objects.checkFromIndexSize(dstOffset, length, dst.length);
        while (length > 0) {
            int page = (int) (guestAddress / PAGE_BYTES);
            int chunk = (int) Math.min(length, PAGE_BYTES - guestAddress % PAGE_BYTES);
            if (frameOf[page] == UNMAPPED) {
                Arrays.fill(dst, dstOffset, dstOffset + chunk, (byte) 0);
            } else {
                MemorySegment.copy(range, ValueLayout.JAVA_BYTE, guestAddress, dst, dstOffset, chunk);
            }
            guestAddress += chunk;
            dstOffset += chunk;
            length -= chunk;
        }
    }

    /**
     * Copies {@code src} into guest memory at {@code guestAddress}, into the frames the pages map.
     *
     * @throws IllegalStateException and writes nothing if a page in the range is read-only or maps no
     *         frame: break sharing (or map a frame) first; a write here never faults
     */
    public synchronized void write(long guestAddress, byte[] src, int srcOffset, int length) {
        checkOpen();
        Objects.checkFromIndexSize(guestAddress, length, (long) guestPages * PAGE_BYTES);
        Objects.checkFromIndexSize(srcOffset, length, src.length);
        if (length == 0) {
            return;
        }
        int last = (int) ((guestAddress + length - 1) / PAGE_BYTES);
        for (int page = (int) (guestAddress / PAGE_BYTES); page <= last; page++) {
            if (!writable.get(page)) {
                throw new IllegalStateException("guest page " + page + (frameOf[page] == UNMAPPED
                        ? " maps no frame" : " is read-only (merged)") + ": break sharing before writing it");
            }
        }
        MemorySegment.copy(src, srcOffset, range, ValueLayout.JAVA_BYTE, guestAddress, length);
    }

    /**
     * The kernel mappings (VMAs) this guest memory's range is split into now, counted in
     * {@code /proc/self/maps}: 1 for a guest laid out in one run, up to one per page once scattered pages
     * are merged. What it costs against {@code vm.max_map_count}. A mapping counts if it overlaps the
     * range: the kernel merges a mapping with a neighbour of the same kind (the reservation of a range
     * still unmapped with another anonymous reservation just below it, say), and the merged one starts
     * below the range. Counting only those that start in it gave 0 then, in one test run of six.
     */
    public long kernelMappings() {
        long start;
        long end;
        synchronized (this) {
            checkOpen();
            start = range.address();
            end = start + range.byteSize();
        }
        try {
            long count = 0;
            // Each line of /proc/self/maps starts with the mapping's first address in hex, then '-'.
            // Latin-1: a mapped file's name is bytes, not UTF-8, and any byte is one char of it.
            for (String line : java.nio.file.Files.readAllLines(java.nio.file.Path.of("/proc/self/maps"),
                    java.nio.charset.StandardCharsets.ISO_8859_1)) {
                int dash = line.indexOf('-');
                int space = line.indexOf(' ', dash + 1);
                if (dash > 0 && space > dash) {
                    long first = Long.parseUnsignedLong(line, 0, dash, 16);
                    long last = Long.parseUnsignedLong(line, dash + 1, space, 16);     // exclusive
                    if (Long.compareUnsigned(first, end) < 0 && Long.compareUnsigned(last, start) > 0) {
                        count++;
                    }
                }
            }
            return count;
        } catch (java.io.IOException e) {
            throw new KvmException(KvmException.Kind.UNAVAILABLE, "cannot read /proc/self/maps: " + e.getMessage());
        }
    }

    /**
     * Unmaps the whole range. Close the VM using it first: KVM would fault on it afterwards.
     *
     * @throws IllegalStateException if a call still holds the range (the arena refuses to close): nothing
     *                               is unmapped and the memory stays open, so a later close can still unmap
     *                               it (a destroy of its guest fails and may be retried)
     */
    @Override
    public void close() {
        synchronized (this) {
            if (closed) {
                return;
            }
            arena.close();
            closed = true;      // only once unmapped: marked first, a refused close would pass for done next time
        }
        frames.forget(this);
    }

    /** Size of the range in bytes, for a KVM memory slot. */
    long bytes() {
        return range.byteSize();
    }

    /** Start of the range in this process: the slot's {@code userspace_addr}. */
    synchronized long hostAddress() {
        checkOpen();
        return range.address();
    }

    private void checkOpen() {
        if (closed) {
            throw new IllegalStateException("this guest memory is closed");
        }
    }
}
