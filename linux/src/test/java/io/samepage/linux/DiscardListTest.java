package io.samepage.linux;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * A discard reaches the kernel only while the region's arena is open, and holds it open for the call:
 * once the region is unmapped and its addresses are reused by another mapping, a stale list must
 * refuse instead of dropping that mapping's pages.
 */
class DiscardListTest {

    private static final int PAGE = 4096;
    private static final int PAGES = 64;
    private static final long BYTES = (long) PAGES * PAGE;

    @BeforeEach
    void nativeMemory() {
        assumeTrue(NativeMemory.available(), "skipped: native memory is not available here");
    }

    @Test
    void discardDropsTheListedPagesOnly() {
        try (Arena arena = Arena.ofShared()) {
            MemorySegment region = NativeMemory.reserve(BYTES, arena);
            region.fill((byte) 7);
            DiscardList list = new DiscardList(region, arena);
            list.add(0, PAGE);
            list.add(PAGE, PAGE);                       // extends the first entry
            list.add(10L * PAGE, 2L * PAGE);
            list.discard();
            for (int page = 0; page < PAGES; page++) {
                boolean dropped = page < 2 || page == 10 || page == 11;
                assertEquals(dropped ? 0 : 7, region.get(ValueLayout.JAVA_BYTE, (long) page * PAGE), "page " + page);
            }
        }
    }

    @Test
    void listRefusesARegionItsArenaDoesNotOwn() {
        try (Arena owner = Arena.ofShared(); Arena other = Arena.ofShared()) {
            MemorySegment region = NativeMemory.reserve(BYTES, owner);
            assertThrows(IllegalArgumentException.class, () -> new DiscardList(region, other));
        }
    }

    @Test
    void discardAfterTheRegionIsUnmappedLeavesAMappingThatReusedItsAddressIntact() {
        Arena arena = Arena.ofShared();
        MemorySegment region = NativeMemory.reserve(BYTES, arena);
        DiscardList list = new DiscardList(region, arena);
        list.add(0, BYTES);
        arena.close();                                  // munmap: a pool closing while its list is still held
        try (Arena reuser = Arena.ofShared()) {
            MemorySegment other = reuseAddress(region.address(), reuser);
            other.fill((byte) 9);

            IllegalStateException refused = null;
            try {
                list.discard();
            } catch (IllegalStateException e) {
                refused = e;
            }
            for (int page = 0; page < PAGES; page++) {
                assertEquals(9, other.get(ValueLayout.JAVA_BYTE, (long) page * PAGE),
                        "page " + page + " of the mapping now at the old region's address keeps its bytes");
            }
            assertNotNull(refused, "a list over a closed region refuses");
        }
    }

    @Test
    void perRangeDiscardAfterTheRegionIsUnmappedLeavesAMappingThatReusedItsAddressIntact() {
        Arena arena = Arena.ofShared();
        MemorySegment region = NativeMemory.reserve(BYTES, arena);
        arena.close();
        try (Arena reuser = Arena.ofShared()) {
            MemorySegment other = reuseAddress(region.address(), reuser);
            other.fill((byte) 9);

            assertThrows(IllegalStateException.class, () -> NativeMemory.discard(region, 0, BYTES));
            assertEquals(9, other.get(ValueLayout.JAVA_BYTE, 0));
        }
    }

    /**
     * A new region of the same size at {@code address}: the kernel hands a just-freed range to the next
     * mapping of its size. Skips the test where it did not (the hazard needs a reused address).
     */
    private static MemorySegment reuseAddress(long address, Arena owner) {
        MemorySegment other = NativeMemory.reserve(BYTES, owner);
        assumeTrue(other.address() == address, "skipped: the kernel placed the next mapping elsewhere");
        return other;
    }
}
