package io.samepage.linux;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** A region reserved around a block offset starts a 2 MiB block there, and is whole and usable. */
class NativeMemoryTest {

    private static final long PAGE = 4096;
    private static final long BYTES = 8L << 20;
    /** What a reservation maps beyond its region, to place the block: 2 MiB less a page. */
    private static final long SPARE = NativeMemory.BLOCK_BYTES - PAGE;
    /** The block offset of the failing-trim tests: not a block boundary, so some trim has work. */
    private static final long BLOCK_OFFSET = 3 * PAGE;
    /** mmap(2)'s MAP_FIXED_NOREPLACE: map exactly there, or fail if anything is mapped there already. */
    private static final int MAP_FIXED_NOREPLACE = 0x100000;
    /** What {@link #mark} writes at the start of each page ("Samepage"), xor the page's address. */
    private static final long MARK = 0x5361_6D65_7061_6765L;

    @BeforeEach
    void nativeMemory() {
        assumeTrue(NativeMemory.available(), "skipped: native memory is not available here");
    }

    @Test
    void theBlockOffsetFallsOnABlockBoundaryAndEveryPageIsUsable() {
        for (long blockOffset : new long[] {0, PAGE, 1L << 20, BYTES - PAGE}) {
            for (int attempt = 0; attempt < 8; attempt++) { // the kernel places each mapping anew
                try (Arena arena = Arena.ofShared()) {
                    MemorySegment region = NativeMemory.reserve(BYTES, blockOffset, arena);
                    assertEquals(BYTES, region.byteSize());
                    assertEquals(0, (region.address() + blockOffset) % NativeMemory.BLOCK_BYTES,
                            "block offset " + blockOffset + " at address " + Long.toHexString(region.address()));
                    for (long off = 0; off < BYTES; off += PAGE) {
                        assertEquals(0, region.get(ValueLayout.JAVA_LONG, off), "a new page reads as zeros");
                        region.set(ValueLayout.JAVA_LONG, off, off + 1);
                    }
                    for (long off = 0; off < BYTES; off += PAGE) {
                        assertEquals(off + 1, region.get(ValueLayout.JAVA_LONG, off));
                    }
                }
            }
        }
    }

    @Test
    void aBlockOffsetOutsideTheRegionOrOffAPageIsRefused() {
        try (Arena arena = Arena.ofShared()) {
            for (long bad : new long[] {-PAGE, BYTES, BYTES + PAGE, 100}) {
                IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                        () -> NativeMemory.reserve(BYTES, bad, arena));
                assertTrue(e.getMessage().contains("offset " + bad), e.getMessage());
            }
            assertThrows(IllegalArgumentException.class, () -> NativeMemory.reserve(PAGE + 1, 0, arena));
        }
    }

    /**
     * The spare address space after the region fails to unmap, after the part before it was unmapped and
     * something else mapped there (as another thread may): the reservation fails, unmaps the rest of its
     * own range and leaves the other mapping alone. It used to unmap its whole first range again.
     */
    @Test
    void aFailedTrimUnmapsWhatTheReservationStillOwnsAndNothingElse() throws IOException {
        boolean tested = false;
        for (int attempt = 0; attempt < 16 && !tested; attempt++) {    // the kernel may align it already
            List<long[]> calls = new ArrayList<>();
            long[] other = {0};
            NativeMemory.Unmap headThenOtherThenFail = (address, length) -> {
                calls.add(new long[] {address, length});
                if (calls.size() != 2) {
                    return Libc.munmap(address, length);        // the first trim and the cleanup
                }
                long head = calls.get(0)[0];
                mark(head + calls.get(0)[1], address + length);     // the region and the tail, still mapped
                other[0] = Libc.mmap(head, PAGE, Abi.PROT_READ | Abi.PROT_WRITE,
                        Abi.MAP_PRIVATE | Abi.MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0L);
                if (other[0] == head) {
                    mark(head, head + PAGE);
                }
                return -Abi.ENOMEM;
            };
            try (Arena arena = Arena.ofShared()) {
                try {
                    NativeMemory.reserve(BYTES, PAGE * attempt, arena, headThenOtherThenFail);
                    continue;       // one of the two trims was empty: nothing failed
                } catch (IllegalStateException e) {
                    assertTrue(e.getMessage().contains("nothing stays mapped"), e.getMessage());
                }
            }
            assertEquals(3, calls.size());
            long head = calls.get(0)[0];
            long region = head + calls.get(0)[1];
            long end = calls.get(1)[0] + calls.get(1)[1];
            assertArrayEquals(new long[] {region, end - region}, calls.get(2), "the cleanup starts at the region");
            assumeTrue(other[0] == head, "skipped: something else took the freed range first");
            try {
                assertEquals(1, markedPages(head, head + PAGE), "the other mapping before the region was unmapped");
                MemorySegment page = MemorySegment.ofAddress(head).reinterpret(PAGE);
                page.set(ValueLayout.JAVA_LONG, 0, 42);
                assertEquals(42, page.get(ValueLayout.JAVA_LONG, 0));
                assertEquals(0, markedPages(region, end), "part of the reservation's own range stayed mapped");
            } finally {
                Libc.munmap(head, PAGE);
            }
            tested = true;
        }
        assumeTrue(tested, "skipped: every mapping came block aligned, so no trim had two parts");
    }

    /** The first trim fails: the reservation fails and nothing of its range stays mapped. */
    @Test
    void aFailedFirstTrimLeavesNothingMapped() throws IOException {
        List<long[]> calls = new ArrayList<>();
        IllegalStateException e = reserveFailingTrim(calls, Libc::munmap);
        assertTrue(e.getMessage().contains("failed with errno " + Abi.ENOMEM), e.getMessage());
        assertTrue(e.getMessage().contains("nothing stays mapped"), e.getMessage());
        assertEquals(2, calls.size(), "one trim, then the cleanup");
        long first = firstOfReservation(calls.get(0));
        assertArrayEquals(new long[] {first, BYTES + SPARE}, calls.get(1), "the cleanup unmaps the whole range");
        assertEquals(0, markedPages(first, first + BYTES + SPARE), "part of the reservation's own range stayed mapped");
    }

    /**
     * The first trim fails and so does the cleanup: the error says what stays mapped, and where, rather
     * than "nothing stays mapped" (which it said whatever the cleanup's munmap returned).
     */
    @Test
    void aFailedCleanupSaysWhatStaysMapped() throws IOException {
        List<long[]> calls = new ArrayList<>();
        IllegalStateException e = reserveFailingTrim(calls, (address, length) -> -Abi.EINVAL);
        assertEquals(2, calls.size(), "one trim, then the cleanup");
        long first = firstOfReservation(calls.get(0));
        try {
            assertTrue(e.getMessage().contains("failed too, with errno " + Abi.EINVAL + ": " + (BYTES + SPARE)
                    + " bytes of address space at 0x" + Long.toHexString(first) + " stay mapped"), e.getMessage());
            assertFalse(e.getMessage().contains("nothing stays mapped"), e.getMessage());
            assertEquals((BYTES + SPARE) / PAGE, markedPages(first, first + BYTES + SPARE),
                    "the error says it stays mapped, and it does");
        } finally {
            Libc.munmap(first, BYTES + SPARE);
        }
    }

    /**
     * Populating a range backs each of its pages with memory (mincore counts them resident), leaves the
     * bytes as they were, and touches nothing outside it. Refused where the range is off a page or
     * outside the region.
     */
    @Test
    void populateBacksEveryPageOfTheRangeAndKeepsItsBytes() {
        assumeTrue(kernelAtLeast(5, 14), "MADV_POPULATE_WRITE needs Linux 5.14");
        try (Arena arena = Arena.ofShared()) {
            MemorySegment region = NativeMemory.reserve(BYTES, arena);
            region.set(ValueLayout.JAVA_LONG, 5 * PAGE, 0x5A3E_0005L);
            long half = BYTES / 2;
            assertEquals(1, residentPages(region, 0, half, arena), "only the page written is resident");
            assertTrue(NativeMemory.populate(region, 0, half));
            assertEquals(half / PAGE, residentPages(region, 0, half, arena), "every page of the range");
            assertEquals(0, residentPages(region, half, BYTES - half, arena), "nothing after it");
            assertEquals(0x5A3E_0005L, region.get(ValueLayout.JAVA_LONG, 5 * PAGE));
            assertEquals(0, region.get(ValueLayout.JAVA_LONG, 6 * PAGE));
            assertThrows(IllegalArgumentException.class, () -> NativeMemory.populate(region, 100, PAGE));
            assertThrows(IllegalArgumentException.class, () -> NativeMemory.populate(region, 0, 100));
            assertThrows(IndexOutOfBoundsException.class, () -> NativeMemory.populate(region, BYTES, PAGE));
        }
    }

    /** Pages of {@code [offset, offset + bytes)} of {@code region} that {@code mincore} reports resident. */
    private static long residentPages(MemorySegment region, long offset, long bytes, Arena arena) {
        MemorySegment vector = arena.allocate(bytes / PAGE);
        assertEquals(0, Libc.mincore(region.address() + offset, bytes, vector));
        long resident = 0;
        for (long i = 0; i < bytes / PAGE; i++) {
            resident += vector.get(ValueLayout.JAVA_BYTE, i) & 1;
        }
        return resident;
    }

    /** True if this kernel's version ({@code os.version}, "6.18.44-...") is at least major.minor. */
    private static boolean kernelAtLeast(int major, int minor) {
        String[] parts = System.getProperty("os.version").split("[.-]");
        int have = Integer.parseInt(parts[0]) * 1000 + Integer.parseInt(parts[1]);
        return have >= major * 1000 + minor;
    }

    /**
     * Reserves with a first trim that fails with ENOMEM and every later unmap done by {@code later};
     * records every call in {@code calls} and returns what the reservation threw. The failing trim
     * {@link #mark marks} every page of the reservation's range first.
     */
    private static IllegalStateException reserveFailingTrim(List<long[]> calls, NativeMemory.Unmap later) {
        try (Arena arena = Arena.ofShared()) {
            return assertThrows(IllegalStateException.class, () -> NativeMemory.reserve(BYTES, BLOCK_OFFSET, arena,
                    (address, length) -> {
                        calls.add(new long[] {address, length});
                        if (calls.size() > 1) {
                            return later.munmap(address, length);
                        }
                        long first = firstOfReservation(calls.get(0));
                        mark(first, first + BYTES + SPARE);
                        return -Abi.ENOMEM;
                    }));
        }
    }

    /**
     * Where the reservation's first range started, from its one failed trim: either the part before the
     * region (the region starts where it ends) or, with nothing before the region, the part after it
     * (the region starts BYTES before it).
     */
    private static long firstOfReservation(long[] trim) {
        boolean before = (trim[0] + trim[1] + BLOCK_OFFSET) % NativeMemory.BLOCK_BYTES == 0;
        return before ? trim[0] : trim[0] - BYTES;
    }

    /**
     * Writes {@link #MARK} xor each page's address at the start of every page of {@code [from, to)}, which
     * this test has mapped: a page that still holds its mark later is this test's memory, still mapped.
     */
    private static void mark(long from, long to) {
        MemorySegment range = MemorySegment.ofAddress(from).reinterpret(to - from);
        for (long offset = 0; offset < to - from; offset += PAGE) {
            range.set(ValueLayout.JAVA_LONG, offset, MARK ^ (from + offset));
        }
    }

    /**
     * The pages of {@code [from, to)} that hold their {@link #mark}. Not whether anything is mapped
     * there ({@code /proc/self/maps}): once the range is unmapped, any thread of the JVM may map there
     * meanwhile (a new thread's stack lands in the hole just freed). Read through {@code /proc/self/mem},
     * where an unmapped page is an I/O error rather than a crash.
     */
    private static long markedPages(long from, long to) throws IOException {
        long marked = 0;
        ByteBuffer word = ByteBuffer.allocate(Long.BYTES).order(ByteOrder.nativeOrder());
        try (FileChannel memory = FileChannel.open(Path.of("/proc/self/mem"), StandardOpenOption.READ)) {
            for (long page = from; page < to; page += PAGE) {
                word.clear();
                try {
                    if (memory.read(word, page) == Long.BYTES && word.getLong(0) == (MARK ^ page)) {
                        marked++;
                    }
                } catch (IOException unmapped) {
                    // EIO: nothing is mapped at this page
                }
            }
        }
        return marked;
    }
}
