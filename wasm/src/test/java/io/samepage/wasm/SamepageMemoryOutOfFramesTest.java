package io.samepage.wasm;

import static io.samepage.wasm.WatPrograms.call;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.dylibso.chicory.runtime.ByteArrayMemory;
import com.dylibso.chicory.runtime.Instance;
import com.dylibso.chicory.runtime.WasmRuntimeException;
import com.dylibso.chicory.wasm.WasmModule;
import io.samepage.core.DedupEngine;
import io.samepage.core.DedupException;
import io.samepage.core.EngineContext;
import io.samepage.core.Guest;
import io.samepage.core.MergeDomain;
import java.util.Arrays;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;

/**
 * What an embedder sees when instances, run by Chicory's interpreter, need frames the engine's pool has
 * not got: a trap of the type Chicory's own memories trap with, the engine's refusal as its cause, and
 * nothing else disturbed (pages.wat stores a word at the start of each 4 KiB page it is asked to).
 */
class SamepageMemoryOutOfFramesTest {

    private static final int PAGE = 4096;
    private static final int WASM_PAGE = 65536;
    /** 64 frames, the zero frame among them. */
    private static final long POOL_BYTES = 64L * PAGE;
    private static final int ENGINE_PAGES = 4 * WASM_PAGE / PAGE;     // pages.wat's memory: 4 WebAssembly pages

    private static DedupEngine engine() {
        return DedupEngine.create(new EngineContext().poolBytes(POOL_BYTES).conclude());
    }

    private static SamepageMemory memory(Instance instance) {
        return (SamepageMemory) instance.memory();
    }

    /** Asserts {@code op} throws the out-of-frames trap; returns the engine's refusal, its cause. */
    static DedupException assertTrapsOutOfFrames(Executable op) {
        return assertOutOfFrames(assertThrows(WasmRuntimeException.class, op));
    }

    /** Asserts {@code trap} is the out-of-frames trap, with the engine's refusal as its cause. */
    private static DedupException assertOutOfFrames(WasmRuntimeException trap) {
        assertEquals(WasmRuntimeException.class, trap.getClass(), "the type Chicory's memories trap with");
        DedupException refused = assertInstanceOf(DedupException.class, trap.getCause(), "the engine's refusal is the cause");
        assertEquals(DedupException.Kind.POOL_EXHAUSTED, refused.kind());
        assertTrue(trap.getMessage().startsWith("out of host frames: "), trap.getMessage());
        assertTrue(trap.getMessage().endsWith(": " + refused.getMessage()), "the engine's reason ends it: " + trap.getMessage());
        assertTrue(refused.getMessage().startsWith("host frame pool exhausted: "), refused.getMessage());
        assertFalse(trap.getMessage().contains("\n"), "one line: " + trap.getMessage());
        return refused;
    }

    /** Takes every free frame with a guest of its own; fill it with zeros to give them back. */
    private static Guest exhaust(DedupEngine engine, MergeDomain domain) {
        Guest filler = engine.createGuest(domain, "filler", POOL_BYTES);
        byte[] page = new byte[PAGE];
        Arrays.fill(page, (byte) 7);
        assertThrows(DedupException.class, () -> {
            for (long a = 0; a < filler.sizeBytes(); a += PAGE) {
                filler.write(a, page, 0, PAGE);
            }
        }, "a guest as large as the pool fills it");
        assertEquals(POOL_BYTES / PAGE, engine.framesInUse());
        return filler;
    }

    @Test
    void aStoreThatFindsNoFrameTrapsAndLeavesTheHostAndOtherInstancesAlone() {
        WasmModule module = WatPrograms.module("pages");
        try (DedupEngine engine = engine()) {
            SamepageMemoryFactory memories = new SamepageMemoryFactory(engine, engine.createDomain("tenant")).cachePages(4);
            long alone = engine.framesInUse();
            Instance other = memories.build(Instance.builder(module));
            call(other, "store_pages", 0, 16, 1000);
            memory(other).release();
            assertEquals(alone + 16, engine.framesInUse(), "the other instance holds 16 frames");

            Instance failing = memories.build(Instance.builder(module));
            WasmRuntimeException trap = assertThrows(WasmRuntimeException.class,
                    () -> call(failing, "store_pages", 0, ENGINE_PAGES, 1), "64 pages' stores need more frames than the pool has");
            assertOutOfFrames(trap);
            WasmRuntimeException outOfBounds = assertThrows(WasmRuntimeException.class, () -> call(failing, "store_out_of_bounds"));
            assertEquals(outOfBounds.getClass(), trap.getClass(), "caught where an out-of-bounds store is");
            assertEquals(POOL_BYTES / PAGE, engine.framesInUse(), "every frame is taken, and counted: none was lost to the refusal");
            assertEquals(4, call(failing, "grow", 1), "a grow takes no frame: it succeeds with the pool full");

            assertEquals(16 * 1000 + 120, call(other, "sum_pages", 0, 16), "the other instance reads its memory");
            call(other, "store_pages", 0, 16, 2000);
            memory(other).release();
            assertEquals(16 * 2000 + 120, call(other, "sum_pages", 0, 16), "and stores to the pages it has frames for");
            memory(other).close();
            assertEquals(POOL_BYTES / PAGE - 16, engine.framesInUse(), "closing it gives back exactly its 16 frames");

            int stored = 0;
            while (stored < ENGINE_PAGES && failing.memory().readInt(stored * PAGE) == 1 + stored) {
                stored++;
            }
            assertTrue(stored > 0 && stored < ENGINE_PAGES, "some stores ran before the trap: " + stored);
            for (int page = stored; page < ENGINE_PAGES + 16; page++) {
                assertEquals(0, failing.memory().readInt(page * PAGE), "no store at or after the one that trapped: page " + page);
            }
            call(failing, "store_pages", stored, 4, 1 + stored);
            assertEquals((stored + 4) * (stored + 5) / 2, call(failing, "sum_pages", 0, stored + 4),
                    "with frames free again, the instance that trapped runs on");
            memory(failing).close();
            assertEquals(alone, engine.framesInUse(), "every frame is back");
        }
    }

    @Test
    void aLoadNeedsNoFrameThoughThePageItEvictsWouldNeedOne() {
        WasmModule module = WatPrograms.module("pages");
        try (DedupEngine engine = engine()) {
            SamepageMemoryFactory memories = new SamepageMemoryFactory(engine, engine.createDomain("loads")).cachePages(4);
            Instance instance = memories.build(Instance.builder(module));
            call(instance, "store_pages", 0, 8, 1);    // pages 0 to 3 written back, 4 to 7 stored to in the cache
            Guest filler = exhaust(engine, memories.domain());
            long full = engine.framesInUse();
            assertEquals(36, call(instance, "sum_pages", 0, 8), "loads of pages 0 to 3 would evict pages 4 to 7");
            byte[] bytes = instance.memory().readBytes(0, 8 * PAGE);
            for (int page = 0; page < 8; page++) {
                assertEquals(1 + page, instance.memory().readInt(page * PAGE));
                assertEquals(1 + page, (bytes[page * PAGE] & 0xFF) | (bytes[page * PAGE + 1] & 0xFF) << 8,
                        "a bulk read sees the stores still cached: page " + page);
            }
            assertEquals(full, engine.framesInUse(), "the loads took no frame");
            assertTrapsOutOfFrames(() -> call(instance, "store_pages", 0, 1, 9));    // a store must evict page 4
            filler.fill(0, POOL_BYTES, (byte) 0);
            memory(instance).release();
            assertEquals(36, call(instance, "sum_pages", 0, 8), "the stores reach the engine once frames are free");
            assertEquals(8, instance.memory().readInt(7 * PAGE));
        }
    }

    @Test
    void aStoreTrapNamesTheAddressAndWidthStoredToAndThePageWhoseWriteBackFoundNoFrame() {
        WasmModule module = WatPrograms.module("pages");
        try (DedupEngine engine = engine()) {
            SamepageMemoryFactory memories = new SamepageMemoryFactory(engine, engine.createDomain("where")).cachePages(4);
            Instance low = memories.build(Instance.builder(module));
            call(low, "store_pages", 0, 8, 1);      // slots 0 to 3 hold pages 4 to 7, stored to
            Instance high = memories.build(Instance.builder(module));
            assertEquals(4, call(high, "grow", 4), "a second guest holds engine pages 64 to 127");
            call(high, "store_pages", 64, 8, 1);    // slots 0 to 3 hold pages 68 to 71, in the second guest
            exhaust(engine, memories.domain());

            WasmRuntimeException trap = assertThrows(WasmRuntimeException.class, () -> call(low, "store_at", 0x1234, 7));
            DedupException refused = assertOutOfFrames(trap);
            assertTrue(refused.getMessage().contains(" at 0x5000,"), "the engine names the page it could not write back: " + refused);
            assertEquals("out of host frames: 4-byte store at address 4660 (0x1234) must first write back the cached page"
                    + " at 0x5000 it evicts: " + refused.getMessage(), trap.getMessage());

            trap = assertThrows(WasmRuntimeException.class, () -> call(low, "store_at", 3 * PAGE - 2, 7));
            assertEquals("out of host frames: 4-byte store at address 12286 (0x2ffe) must first write back the cached page"
                    + " at 0x6000 it evicts: " + assertOutOfFrames(trap).getMessage(), trap.getMessage(), "a store across two pages");

            trap = assertThrows(WasmRuntimeException.class, () -> call(high, "store_at", 65 * PAGE + 8, 7));
            refused = assertOutOfFrames(trap);
            assertTrue(refused.getMessage().contains("#1 ") && refused.getMessage().contains(" at 0x5000,"),
                    "the engine names the page's address in its guest: " + refused);
            assertEquals("out of host frames: 4-byte store at address 266248 (0x41008) must first write back the cached page"
                    + " at 0x45000 it evicts: " + refused.getMessage(), trap.getMessage(), "the trap names addresses in linear memory");
        }
    }

    @Test
    void aBulkFillThatFindsTooFewFramesTrapsHavingFilledNothing() {
        WasmModule module = WatPrograms.module("pages");
        try (DedupEngine engine = engine()) {
            SamepageMemoryFactory memories = new SamepageMemoryFactory(engine, engine.createDomain("bulk"));
            Instance instance = memories.build(Instance.builder(module));
            call(instance, "store_pages", 0, 2, 5);
            memory(instance).flush();
            byte[] before = instance.memory().readBytes(0, 4 * WASM_PAGE);
            Guest filler = exhaust(engine, memories.domain());
            filler.fill(0, 8 * PAGE, (byte) 0);     // 8 frames: not the 16 a 64 KiB fill needs
            long inUse = engine.framesInUse();
            WasmRuntimeException trap = assertThrows(WasmRuntimeException.class, () -> call(instance, "fill", WASM_PAGE, 9, WASM_PAGE));
            assertTrue(assertOutOfFrames(trap).getMessage().endsWith("nothing was written"), trap.getMessage());
            assertTrue(trap.getMessage().startsWith("out of host frames: 65536-byte fill at address 65536 (0x10000): "),
                    "the trap names the range filled: " + trap.getMessage());
            assertEquals(inUse, engine.framesInUse(), "the refused fill took no frame");
            assertArrayEquals(before, instance.memory().readBytes(0, 4 * WASM_PAGE), "the trapped fill changed nothing");
            filler.fill(0, POOL_BYTES, (byte) 0);
            call(instance, "fill", WASM_PAGE, 9, WASM_PAGE);
            assertEquals(9, instance.memory().read(2 * WASM_PAGE - 1), "with the frames it needs, it fills");
        }
    }

    /**
     * A copy reads one range and writes another: its trap names both, whichever way it went (through the
     * cache, where the destination's page evicts a stored-to page; to the engine, where its two pages
     * share a slot; or in bulk), and changed no byte.
     */
    @Test
    void aCopyTrapNamesTheRangeItReadsAndTheRangeItWrites() {
        WasmModule module = WatPrograms.module("pages");
        try (DedupEngine engine = engine()) {
            SamepageMemoryFactory fourSlots = new SamepageMemoryFactory(engine, engine.createDomain("copies")).cachePages(4);
            Instance cached = fourSlots.build(Instance.builder(module));
            call(cached, "store_pages", 0, 8, 1);       // slots 0 to 3 hold pages 4 to 7, stored to
            Instance oneSlot = new SamepageMemoryFactory(engine, engine.createDomain("one slot")).cachePages(1)
                    .build(Instance.builder(module));
            call(oneSlot, "store_at", 0x100, 7);
            memory(oneSlot).flush();                    // page 0 holds a frame: the copies below read it
            exhaust(engine, fourSlots.domain());
            byte[] cachedBefore = cached.memory().readBytes(0, 4 * WASM_PAGE);
            byte[] oneSlotBefore = oneSlot.memory().readBytes(0, 4 * WASM_PAGE);

            WasmRuntimeException trap = assertThrows(WasmRuntimeException.class, () -> call(cached, "copy", 0x1234, 0x6010, 100));
            assertEquals("out of host frames: 100-byte copy from address 24592 (0x6010) to address 4660 (0x1234) must first"
                    + " write back the cached page at 0x5000 it evicts: " + assertOutOfFrames(trap).getMessage(), trap.getMessage(),
                    "through the cache");
            trap = assertThrows(WasmRuntimeException.class, () -> call(oneSlot, "copy", 3 * PAGE - 50, 0x100, 100));
            assertEquals("out of host frames: 100-byte copy from address 256 (0x100) to address 12238 (0x2fce): "
                    + assertOutOfFrames(trap).getMessage(), trap.getMessage(), "to the engine, its two pages sharing a slot");
            trap = assertThrows(WasmRuntimeException.class, () -> call(oneSlot, "copy", 2 * WASM_PAGE, 0x100, WASM_PAGE));
            assertEquals("out of host frames: 65536-byte copy from address 256 (0x100) to address 131072 (0x20000): "
                    + assertOutOfFrames(trap).getMessage(), trap.getMessage(), "in bulk");

            assertArrayEquals(cachedBefore, cached.memory().readBytes(0, 4 * WASM_PAGE), "the trapped copy changed nothing");
            assertArrayEquals(oneSlotBefore, oneSlot.memory().readBytes(0, 4 * WASM_PAGE), "nor did these");
        }
    }

    @Test
    void anInstantiationWhoseImageFindsNoFrameTrapsAndHoldsNone() {
        WasmModule module = WatPrograms.module("bulk");     // an image of four non-zero pages
        try (DedupEngine engine = engine()) {
            SamepageMemoryFactory memories = new SamepageMemoryFactory(engine, engine.createDomain("image"));
            Guest filler = exhaust(engine, memories.domain());
            filler.fill(0, 2 * PAGE, (byte) 0);     // two frames: half of the image
            long full = engine.framesInUse();
            WasmRuntimeException trap = assertThrows(WasmRuntimeException.class, () -> memories.build(Instance.builder(module)));
            assertEquals("out of host frames: data segments' page at address 12288 (0x3000): " + assertOutOfFrames(trap).getMessage(),
                    trap.getMessage(), "the trap names the third page of the image, the first with no frame");
            assertEquals(full, engine.framesInUse(), "the failed instantiation holds no frame");
            assertEquals(1, engine.guests().size(), "nor a guest: only the filler is left");
            filler.fill(0, POOL_BYTES, (byte) 0);
            Instance instance = memories.build(Instance.builder(module));
            Instance reference = Instance.builder(module).withMemoryFactory(ByteArrayMemory::new).build();
            assertArrayEquals(reference.memory().readBytes(0, 2 * WASM_PAGE), instance.memory().readBytes(0, 2 * WASM_PAGE),
                    "with room, the image is whole");
        }
    }
}
