package io.samepage.wasm;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import com.dylibso.chicory.runtime.ByteArrayMemory;
import com.dylibso.chicory.runtime.Instance;
import com.dylibso.chicory.runtime.WasmRuntimeException;
import com.dylibso.chicory.wasm.WasmModule;
import com.dylibso.chicory.wasm.types.DataSegment;
import com.dylibso.chicory.wasm.types.MemoryLimits;
import io.samepage.core.DedupEngine;
import io.samepage.core.DedupException;
import io.samepage.core.EngineContext;
import io.samepage.core.Guest;
import io.samepage.core.MergeDomain;
import java.util.Arrays;
import java.util.Random;
import java.util.function.Consumer;
import org.junit.jupiter.api.Test;

/**
 * A bulk operation that traps writes nothing (the bulk memory proposal checks bounds before it writes):
 * every byte of the memory reads back as before the call.
 */
class SamepageMemoryAllOrNothingTest {

    private static final int WASM_PAGE = 65536;
    private static final int PAGE = 4096;

    private static DedupEngine engine(long mib) {
        return DedupEngine.create(new EngineContext().poolBytes(mib << 20).conclude());
    }

    @Test
    void aCopyWhoseEndOverflowsAnIntTrapsBeforeWritingAByte() {
        try (DedupEngine engine = engine(4)) {
            int pages = (1 << 14) + 1;      // 1 GiB + 64 KiB: a destination near the end plus a size past 2^31 - 1
            SamepageMemory memory = (SamepageMemory) new SamepageMemoryFactory(engine, engine.createDomain("overflow"))
                    .apply(new MemoryLimits(pages, pages));
            int limit = pages * WASM_PAGE;
            byte[] source = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
            memory.write(0, source, 0, source.length);
            int dest = limit - 10;
            int size = (int) ((1L << 31) - dest);      // dest + size wraps to Integer.MIN_VALUE
            RuntimeException trap = assertThrows(RuntimeException.class, () -> memory.copy(dest, 0, size));
            assertArrayEquals(new byte[10], memory.readBytes(dest, 10), "nothing was copied");
            assertArrayEquals(source, memory.readBytes(0, 10));
            assertEquals(WasmRuntimeException.class, trap.getClass(), "a trap, not " + trap);
            assertEquals("out of bounds memory access: attempted to access address: " + dest + " but limit is: " + limit
                    + " and size: " + size, trap.getMessage());
            memory.close();
        }
    }

    @Test
    void aWriteWhoseSourceEndOverflowsAnIntTrapsBeforeWritingAByte() {
        try (DedupEngine engine = engine(4)) {
            SamepageMemory memory = (SamepageMemory) new SamepageMemoryFactory(engine, engine.createDomain("overflow"))
                    .apply(new MemoryLimits(1, 1));
            byte[] data = {9, 9, 9, 9};
            RuntimeException trap = assertThrows(RuntimeException.class, () -> memory.write(1, data, 1, Integer.MAX_VALUE));
            assertArrayEquals(new byte[WASM_PAGE], memory.readBytes(0, WASM_PAGE));
            assertEquals(WasmRuntimeException.class, trap.getClass(),
                    "memory.init of a segment whose offset plus size wraps is out of bounds: a trap, not " + trap);
            memory.close();
        }
    }

    /**
     * Takes every free frame of {@code engine}'s pool with a guest of its own, which gives them back at
     * {@link #giveBack}.
     */
    private static Guest exhaust(DedupEngine engine, MergeDomain domain) {
        Guest filler = engine.createGuest(domain, "filler", 8L << 20);
        byte[] page = new byte[PAGE];
        Arrays.fill(page, (byte) 7);
        DedupException full = assertThrows(DedupException.class, () -> {
            for (long a = 0; a < filler.sizeBytes(); a += PAGE) {
                filler.write(a, page, 0, PAGE);
            }
        }, "an 8 MiB filler exhausts a 4 MiB pool");
        assertEquals(DedupException.Kind.POOL_EXHAUSTED, full.kind());
        return filler;
    }

    private static void giveBack(Guest filler) {
        filler.fill(0, filler.sizeBytes(), (byte) 0);
    }

    /**
     * Runs {@code op}, a store of a few bytes across the engine pages 0 and 1 at 4096, on a memory of
     * {@code cachePages} whose page-cache eviction on the way needs a frame from an exhausted pool: with
     * two slots, page 1's slot holds page 3, stored to and never written back (the engine maps it to the
     * zero frame); with one, page 0's own write-back is the eviction. The op must trap out of frames and every
     * byte must read back as before.
     */
    private static void assertRefusedAcrossCachedPages(int cachePages, Consumer<SamepageMemory> op) {
        try (DedupEngine engine = engine(4)) {
            MergeDomain domain = engine.createDomain("cached");
            SamepageMemory memory = (SamepageMemory) new SamepageMemoryFactory(engine, domain).cachePages(cachePages)
                    .apply(new MemoryLimits(1, 1));
            byte[] expected = new byte[WASM_PAGE];
            byte[] pattern = new byte[3 * PAGE];
            new Random(42).nextBytes(pattern);
            memory.write(4 * PAGE, pattern, 0, pattern.length);     // more than a page: straight to the engine
            System.arraycopy(pattern, 0, expected, 4 * PAGE, pattern.length);
            if (cachePages > 1) {
                memory.writeByte(3 * PAGE + 5, (byte) 0x44);
                expected[3 * PAGE + 5] = 0x44;
            }
            Guest filler = exhaust(engine, domain);
            SamepageMemoryOutOfFramesTest.assertTrapsOutOfFrames(() -> op.accept(memory));
            giveBack(filler);
            assertArrayEquals(expected, memory.readBytes(0, WASM_PAGE), "a refused store across two pages stored nothing");
            memory.close();
        }
    }

    @Test
    void aSmallWriteAcrossTwoCachedPagesWhoseEvictionIsRefusedWritesNothing() {
        for (int cachePages : new int[] {1, 2}) {
            assertRefusedAcrossCachedPages(cachePages, m -> m.write(PAGE - 2, new byte[] {1, 2, 3, 4}, 0, 4));
        }
    }

    @Test
    void aSmallFillAcrossTwoCachedPagesWhoseEvictionIsRefusedFillsNothing() {
        for (int cachePages : new int[] {1, 2}) {
            assertRefusedAcrossCachedPages(cachePages, m -> m.fill((byte) 0x5A, PAGE - 100, PAGE + 100));
        }
    }

    @Test
    void aSmallCopyAcrossTwoCachedPagesWhoseEvictionIsRefusedCopiesNothing() {
        for (int cachePages : new int[] {1, 2}) {
            assertRefusedAcrossCachedPages(cachePages, m -> m.copy(PAGE - 50, 4 * PAGE + 100, 100));
        }
    }

    @Test
    void anUnalignedStoreAcrossTwoEnginePagesWhoseEvictionIsRefusedStoresNothing() {
        for (int cachePages : new int[] {1, 2}) {
            assertRefusedAcrossCachedPages(cachePages, m -> m.writeShort(PAGE - 1, (short) 0x1234));
            assertRefusedAcrossCachedPages(cachePages, m -> m.writeI32(PAGE - 2, 0x12345678));
            assertRefusedAcrossCachedPages(cachePages, m -> m.writeLong(PAGE - 3, 0x1122334455667788L));
            assertRefusedAcrossCachedPages(cachePages, m -> m.writeF64(PAGE - 7, Math.PI));
        }
    }

    @Test
    void anImageThePoolCannotHoldIsNotLeftHalfMapped() {
        WasmModule module = WatPrograms.module("bulk");
        Instance reference = Instance.builder(module).withMemoryFactory(ByteArrayMemory::new).build();
        DataSegment[] segments = module.dataSection().dataSegments();
        try (DedupEngine engine = engine(4)) {
            MergeDomain domain = engine.createDomain("image");
            SamepageMemory memory = (SamepageMemory) new SamepageMemoryFactory(engine, domain).apply(new MemoryLimits(2, 4));
            Guest filler = exhaust(engine, domain);
            filler.fill(0, 2 * PAGE, (byte) 0);     // two frames: half of the image's four pages
            // As an instance that imports the memory initializes it: its exporter reads what this leaves.
            SamepageMemoryOutOfFramesTest.assertTrapsOutOfFrames(() -> memory.initialize(reference, segments));
            assertArrayEquals(new byte[2 * WASM_PAGE], memory.readBytes(0, 2 * WASM_PAGE), "no page of the image is mapped");
            giveBack(filler);
            memory.initialize(reference, segments);
            assertArrayEquals(reference.memory().readBytes(0, 2 * WASM_PAGE), memory.readBytes(0, 2 * WASM_PAGE),
                    "with room, the image is whole");
            memory.close();
        }
    }
}
