package io.samepage.kvm;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.BitSet;

/**
 * The address range a {@link MappedGuestMemory} reserved, and the pages of it that may be <em>holes</em>:
 * addresses the range may no longer hold, where another mapping of this process (a thread stack, a malloc
 * arena) may have been placed since. KVM's slot names every page of the range whatever is mapped there,
 * so a vCPU's store to a hole something else took lands in that mapping. Holes are what this class keeps
 * track of and guards.
 *
 * <p>A page becomes a hole when a remap the kernel refused may have unmapped it and neither mapping it
 * back onto its frame nor {@link #reserveAgain reserving it again} succeeded. From then on it is never
 * mapped over, nor unmapped, blindly: {@link #claimHoles} reserves it again only where nothing at all is
 * mapped ({@code MAP_FIXED_NOREPLACE}) and refuses a mapping over a page still a hole; and
 * {@link #close} unmaps the range around the holes it cannot claim. A page the refused remap left mapped
 * after all looks the same as another's mapping to the kernel's {@code EEXIST}, and is left alone the
 * same way: safe, at the cost of that page staying unusable.
 *
 * <p>Not thread safe: its guest memory calls it under its own lock. {@link #kernelMappings} needs no lock.
 */
final class GuestRange {

    private static final long PAGE_BYTES = MemfdFrames.FRAME_BYTES;
    private static final Path SELF_MAPS = Path.of("/proc/self/maps");

    private final GuestRangeCalls calls;
    private final int pages;
    private final Arena arena;
    private final MemorySegment range;
    private final BitSet holes;
    /** {@code -errno} of the last reservation of a hole the kernel refused. */
    private int refusal;

    private GuestRange(GuestRangeCalls calls, int pages, Arena arena, MemorySegment range) {
        this.calls = calls;
        this.pages = pages;
        this.arena = arena;
        this.range = range;
        this.holes = new BitSet(pages);
    }

    /** Reserves {@code pages} pages of address space, {@code PROT_NONE}, through {@code calls}, which later change them. */
    static GuestRange reserve(int pages, GuestRangeCalls calls) {
        Arena arena = Arena.ofShared();
        MemorySegment range = calls.reserve(pages * PAGE_BYTES, arena);
        if (range == null) {
            arena.close();
            throw new KvmException(KvmException.Kind.REFUSED, "reserving " + pages
                    + " guest pages of address space failed: out of address space, or vm.max_map_count reached");
        }
        try {
            return new GuestRange(calls, pages, arena, range);
        } catch (RuntimeException | Error e) {      // an OutOfMemoryError: nothing else would unmap the range
            arena.close();
            throw e;
        }
    }

    /** The range, for the calls that map, protect and advise its pages and for Java reads and writes. */
    MemorySegment segment() {
        return range;
    }

    /**
     * After a refused remap over them: reserves pages {@code [first, + count)} again, as the range was
     * reserved, replacing whatever the kernel left there. Call it only for pages that were this range's
     * just before (mapped, or reserved, by it): it replaces what is there.
     *
     * @return 0, or {@code -errno} if the kernel refused: then they are holes
     */
    int reserveAgain(int first, int count) {
        int result = calls.reserveAgain(range, first * PAGE_BYTES, count * PAGE_BYTES);
        holes.set(first, first + count, result < 0);
        return result;
    }

    /** True if a refused remap left holes in the range: {@link #claimHoles} has something to do. */
    boolean hasHoles() {
        return !holes.isEmpty();
    }

    /**
     * Before mapping over pages {@code [first, + count)}: reserves again every hole of the range where
     * nothing is mapped now (all of them, so that holes close as soon as the kernel allows), and checks
     * that none of those pages is still a hole.
     *
     * @param what what the caller is about to do there, for the message
     * @throws KvmException {@link KvmException.Kind#REFUSED} if one of the pages is still a hole: nothing
     *                      may be mapped over it, since that could replace another mapping of this process
     */
    void claimHoles(int first, int count, String what) {
        if (holes.isEmpty()) {
            return;
        }
        claimAll();
        int hole = holes.nextSetBit(first);
        if (hole >= 0 && hole < first + count) {
            throw KvmException.refused("mmap(MAP_FIXED_NOREPLACE) reserving guest page " + hole + " again before "
                    + what, refusal, "guest page " + hole + " is a hole in the guest's address range (a remap "
                    + "the kernel refused took it, and it could not be reserved again), and something else may be "
                    + "mapped there now; nothing was mapped");
        }
    }

    /** Reserves again every hole where nothing is mapped now; the others stay holes, {@link #refusal} says why. */
    private void claimAll() {
        // Page by page: a run of holes of which something else holds one page would be refused whole.
        for (int hole = holes.nextSetBit(0); hole >= 0; hole = holes.nextSetBit(hole + 1)) {
            int result = calls.reserveIfFree(range, hole * PAGE_BYTES, PAGE_BYTES);
            if (result == 0) {
                holes.clear(hole);
            } else {
                refusal = result;
            }
        }
    }

    /**
     * Unmaps the range. Its holes are first claimed where nothing else is mapped; if some remain, the
     * arena's munmap of the whole range would take whatever another mapping placed there with it. Then
     * each run of pages between them is unmapped alone, and the holes' addresses are left as they are:
     * the arena stays open, never to be closed. A run the kernel refuses to unmap then stays mapped until
     * the process exits; it is this range's own, so nothing else is placed there.
     *
     * @throws IllegalStateException if a call still holds the range (the arena refuses to close):
     *                               nothing is unmapped
     */
    void close() {
        claimAll();
        if (holes.isEmpty()) {
            arena.close();
            return;
        }
        for (int page = holes.nextClearBit(0); page < pages; ) {
            int next = holes.nextSetBit(page);
            int end = next < 0 ? pages : next;
            calls.unmap(range, page * PAGE_BYTES, (end - page) * PAGE_BYTES);
            page = holes.nextClearBit(end);
        }
    }

    /**
     * The kernel mappings (VMAs) overlapping the range now, counted in {@code /proc/self/maps}. A mapping
     * counts if it overlaps the range: the kernel merges a mapping with a neighbour of the same kind (the
     * reservation of a range still unmapped with another anonymous reservation just below it, say), and
     * the merged one starts below the range. Counting only those that start in it gave 0 then, in one
     * test run of six.
     */
    long kernelMappings() {
        long start = range.address();
        long end = start + range.byteSize();
        try {
            long count = 0;
            // Each line of /proc/self/maps starts with the mapping's first address in hex, then '-'.
            // Latin-1: a mapped file's name is bytes, not UTF-8, and any byte is one char of it.
            for (String line : Files.readAllLines(SELF_MAPS, StandardCharsets.ISO_8859_1)) {
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
        } catch (IOException e) {
            throw new KvmException(KvmException.Kind.UNAVAILABLE, "cannot read " + SELF_MAPS + ": " + e.getMessage());
        }
    }
}
