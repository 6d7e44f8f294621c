package io.samepage.wasm;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.dylibso.chicory.runtime.ByteArrayMemory;
import com.dylibso.chicory.runtime.Instance;
import com.dylibso.chicory.wasm.Parser;
import com.dylibso.chicory.wasm.UninstantiableException;
import com.dylibso.chicory.wasm.WasmModule;
import com.dylibso.chicory.wasm.types.MemoryLimits;
import io.samepage.core.DedupEngine;
import io.samepage.core.EngineContext;
import io.samepage.core.Guest;
import java.nio.file.Files;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

class SamepageMemoryFactoryTest {

    /** bulk.wat's active segments cover engine pages 1 to 5, of which page 4 is zeros: four image pages. */
    private static final int BULK_IMAGE_PAGES = 4;

    private static DedupEngine engine() {
        return DedupEngine.create(new EngineContext().poolBytes(64L << 20).conclude());
    }

    @Test
    void laterInstancesMapTheFirstInstancesDataPagesInsteadOfCopyingThem() {
        WasmModule module = WatPrograms.module("bulk");
        try (DedupEngine engine = engine()) {
            SamepageMemoryFactory factory = new SamepageMemoryFactory(engine, engine.createDomain("image"));
            long before = engine.framesInUse();
            Instance first = Instance.builder(module).withMemoryFactory(factory).build();
            assertEquals(before + BULK_IMAGE_PAGES, engine.framesInUse(), "the first instance installs the image's pages");
            Instance second = Instance.builder(module).withMemoryFactory(factory).build();
            Instance third = Instance.builder(module).withMemoryFactory(factory).build();
            assertEquals(before + BULK_IMAGE_PAGES, engine.framesInUse(), "later instances map the image: no frame of their own");
            for (Instance instance : new Instance[] {first, second, third}) {
                Guest guest = ((SamepageMemory) instance.memory()).guests()[0];
                assertEquals(BULK_IMAGE_PAGES, guest.counters().mergingPages());
            }
            Instance reference = Instance.builder(module).withMemoryFactory(ByteArrayMemory::new).build();
            byte[] expected = reference.memory().readBytes(0, 2 * 65536);
            assertArrayEquals(expected, third.memory().readBytes(0, expected.length));
            third.memory().writeByte(4096, (byte) 1);
            ((SamepageMemory) third.memory()).flush();
            assertEquals(before + BULK_IMAGE_PAGES + 1, engine.framesInUse(), "a write breaks the sharing of one page");
            assertArrayEquals(expected, second.memory().readBytes(0, expected.length), "and leaves the others' bytes alone");
        }
    }

    @Test
    void anImageWhoseFramesAreGoneIsInstalledAgain() {
        WasmModule module = WatPrograms.module("bulk");
        try (DedupEngine engine = engine()) {
            SamepageMemoryFactory factory = new SamepageMemoryFactory(engine, engine.createDomain("again"));
            long before = engine.framesInUse();
            ((SamepageMemory) Instance.builder(module).withMemoryFactory(factory).build().memory()).close();
            assertEquals(before, engine.framesInUse(), "closing the only instance frees the image's frames");
            Instance next = Instance.builder(module).withMemoryFactory(factory).build();
            assertEquals(before + BULK_IMAGE_PAGES, engine.framesInUse());
            Instance reference = Instance.builder(module).withMemoryFactory(ByteArrayMemory::new).build();
            assertArrayEquals(reference.memory().readBytes(0, 2 * 65536), next.memory().readBytes(0, 2 * 65536));
        }
    }

    @Test
    void memoryNeverWrittenCostsNoFrame() {
        try (DedupEngine engine = engine()) {
            SamepageMemoryFactory factory = new SamepageMemoryFactory(engine, engine.createDomain("untouched"));
            long before = engine.framesInUse();
            SamepageMemory memory = (SamepageMemory) factory.apply(new MemoryLimits(16, 64));
            assertEquals(0, memory.readLong(16 * 65536 - 8));
            assertEquals(16, memory.grow(32));
            assertEquals(0, memory.read(48 * 65536 - 1));
            memory.flush();
            assertEquals(before, engine.framesInUse(), "reads of 3 MiB of never-written memory take no frame");
            memory.writeI32(20 * 65536, 7);
            memory.flush();
            assertEquals(before + 1, engine.framesInUse(), "one stored page takes one frame");
        }
    }

    @Test
    void aSharedMemoryStaysOnByteArrayMemory() {
        try (DedupEngine engine = engine()) {
            SamepageMemoryFactory factory = new SamepageMemoryFactory(engine, engine.createDomain("shared"));
            assertInstanceOf(ByteArrayMemory.class, factory.apply(new MemoryLimits(1, 2, true)));
        }
    }

    @Test
    void aBuildThatFailsClosesTheMemoriesItMade() {
        WasmModule trapping = WatPrograms.module("start_trap");     // fills 60 KiB (15 frames), then traps
        WasmModule oob = WatPrograms.module("oob_segment");
        try (DedupEngine engine = DedupEngine.create(new EngineContext().poolBytes(8L << 20).conclude())) {
            SamepageMemoryFactory factory = new SamepageMemoryFactory(engine, engine.createDomain("failed"));
            long before = engine.framesInUse();
            for (int i = 0; i < 200; i++) {     // 3000 frames' worth: more than the pool's 2048 if any were kept
                assertThrows(UninstantiableException.class, () -> factory.build(Instance.builder(trapping)));
                assertEquals(before, engine.framesInUse(), "build " + i + ": the failed instance's frames are back");
                assertEquals(0, engine.guests().size(), "build " + i + ": and its guests");
            }
            assertThrows(UninstantiableException.class, () -> factory.build(Instance.builder(oob)));
            assertEquals(0, engine.guests().size(), "a data segment that does not fit: the memory is closed too");
            Instance built = factory.build(Instance.builder(WatPrograms.module("bulk")));
            assertEquals(before + BULK_IMAGE_PAGES, engine.framesInUse(), "a build that succeeds keeps its memory");
            assertEquals(1, ((SamepageMemory) built.memory()).guests().length);
        }
    }

    @Test
    void theImagesOfModulesThatAreGoneLeaveTheHeap() throws Exception {
        byte[] bytes = Files.readAllBytes(WatPrograms.wasm("bulk"));
        try (DedupEngine engine = engine()) {
            SamepageMemoryFactory factory = new SamepageMemoryFactory(engine, engine.createDomain("forgotten"));
            WasmModule kept = Parser.parse(bytes);
            Instance live = factory.build(Instance.builder(kept));
            long oneImage = factory.imageHeapBytes();
            assertTrue(oneImage > 0);
            for (int i = 0; i < 100; i++) {     // a module loaded, used once and dropped: 100 images' worth
                ((SamepageMemory) factory.build(Instance.builder(Parser.parse(bytes))).memory()).close();
            }
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
            while (factory.imageHeapBytes() > oneImage && System.nanoTime() < deadline) {
                System.gc();
                Thread.sleep(20);
            }
            assertEquals(oneImage, factory.imageHeapBytes(), "only the image of the module still reachable is held");
            long frames = engine.framesInUse();
            Instance next = factory.build(Instance.builder(kept));
            assertEquals(frames, engine.framesInUse(), "and the kept module's next instance still maps it");
            assertEquals(BULK_IMAGE_PAGES, ((SamepageMemory) next.memory()).guests()[0].counters().mergingPages());
            assertEquals(1, ((SamepageMemory) live.memory()).guests().length);
        }
    }
}
