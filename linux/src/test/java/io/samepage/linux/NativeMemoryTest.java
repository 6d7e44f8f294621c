package io.samepage.linux;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** A region reserved around a block offset starts a 2 MiB block there, and is whole and usable. */
class NativeMemoryTest {

    private static final long PAGE = 4096;
    private static final long BYTES = 8L << 20;

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
}
