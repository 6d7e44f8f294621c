package io.samepage.wasm;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.dylibso.chicory.wasm.ChicoryException;
import com.dylibso.chicory.wasm.types.MemoryLimits;
import io.samepage.core.DedupEngine;
import io.samepage.core.DedupException;
import io.samepage.core.EngineContext;
import io.samepage.core.Guest;
import io.samepage.core.MergeDomain;
import java.lang.reflect.Proxy;
import java.util.Arrays;
import org.junit.jupiter.api.Test;

/** What a {@link SamepageMemory} does when the engine refuses it. */
class SamepageMemoryRefusalTest {

    private static final int CHUNK = 65536;
    private static final int PAGE = 4096;

    private static DedupEngine engine(long mib) {
        return DedupEngine.create(new EngineContext().poolBytes(mib << 20).conclude());
    }

    /**
     * A memory of two 64 KiB guests, never written or (with {@code source}) holding {@code 0x33} at
     * {@code [0, 8192)}, on a pool that has exactly one free frame left (a filler guest took the rest).
     */
    private static SamepageMemory twoChunksOneFrameFree(DedupEngine engine, boolean source) {
        MergeDomain domain = engine.createDomain("refusals");
        SamepageMemory memory = (SamepageMemory) new SamepageMemoryFactory(engine, domain).apply(new MemoryLimits(1, 4));
        assertEquals(1, memory.grow(1));
        assertEquals(2, memory.guests().length, "a grow past the first 64 KiB adds a second guest");
        if (source) {
            byte[] bytes = new byte[2 * PAGE];
            Arrays.fill(bytes, (byte) 0x33);
            memory.write(0, bytes, 0, bytes.length);
        }
        Guest filler = engine.createGuest(domain, "filler", 8L << 20);
        byte[] page = new byte[PAGE];
        Arrays.fill(page, (byte) 7);
        DedupException full = assertThrows(DedupException.class, () -> {
            for (long a = 0; a < filler.sizeBytes(); a += PAGE) {
                filler.write(a, page, 0, PAGE);
            }
        }, "an 8 MiB filler exhausts a 4 MiB pool");
        assertEquals(DedupException.Kind.POOL_EXHAUSTED, full.kind());
        filler.fill(0, PAGE, (byte) 0);     // one frame back
        return memory;
    }

    /**
     * Asserts the refusal of a bulk operation says nothing was written and every byte of the memory's
     * first {@code expected.length} reads back as {@code expected} (as before the operation).
     */
    private static void assertNothingWritten(SamepageMemory memory, DedupException refused, byte[] expected) {
        assertEquals(DedupException.Kind.POOL_EXHAUSTED, refused.kind());
        assertTrue(refused.getMessage().contains("nothing was written"), "the refusal says so: " + refused.getMessage());
        assertArrayEquals(expected, memory.readBytes(0, expected.length), "the refused operation changed nothing");
    }

    @Test
    void aBulkWriteAcrossGuestsThatIsRefusedWritesNothing() {
        try (DedupEngine engine = engine(4)) {
            SamepageMemory memory = twoChunksOneFrameFree(engine, false);
            byte[] data = new byte[2 * PAGE];
            Arrays.fill(data, (byte) 0x55);
            DedupException refused = SamepageMemoryOutOfFramesTest.assertTrapsOutOfFrames(() -> memory.write(CHUNK - PAGE, data, 0, data.length));
            assertNothingWritten(memory, refused, new byte[2 * CHUNK]);
        }
    }

    @Test
    void aBulkFillAcrossGuestsThatIsRefusedFillsNothing() {
        try (DedupEngine engine = engine(4)) {
            SamepageMemory memory = twoChunksOneFrameFree(engine, false);
            DedupException refused = SamepageMemoryOutOfFramesTest.assertTrapsOutOfFrames(() -> memory.fill((byte) 9, CHUNK - PAGE, CHUNK + PAGE));
            assertNothingWritten(memory, refused, new byte[2 * CHUNK]);
        }
    }

    @Test
    void aBulkCopyAcrossGuestsThatIsRefusedCopiesNothing() {
        try (DedupEngine engine = engine(4)) {
            SamepageMemory memory = twoChunksOneFrameFree(engine, true);
            DedupException refused = SamepageMemoryOutOfFramesTest.assertTrapsOutOfFrames(() -> memory.copy(CHUNK - PAGE, 0, 2 * PAGE));
            byte[] expected = new byte[2 * CHUNK];
            Arrays.fill(expected, 0, 2 * PAGE, (byte) 0x33);
            assertNothingWritten(memory, refused, expected);
        }
    }

    @Test
    void aCopyOfMoreThan64KiBThatIsRefusedCopiesNothing() {
        try (DedupEngine engine = engine(4)) {
            MergeDomain domain = engine.createDomain("copy");
            SamepageMemory memory = (SamepageMemory) new SamepageMemoryFactory(engine, domain).apply(new MemoryLimits(4, 4));
            assertEquals(1, memory.guests().length);
            byte[] source = new byte[2 * CHUNK];
            Arrays.fill(source, (byte) 0x33);
            memory.write(0, source, 0, source.length);
            Guest filler = engine.createGuest(domain, "filler", 8L << 20);
            byte[] page = new byte[PAGE];
            Arrays.fill(page, (byte) 7);
            assertThrows(DedupException.class, () -> {
                for (long a = 0; a < filler.sizeBytes(); a += PAGE) {
                    filler.write(a, page, 0, PAGE);
                }
            });
            filler.fill(0, CHUNK, (byte) 0);    // frames for 64 KiB, not 128
            DedupException refused = SamepageMemoryOutOfFramesTest.assertTrapsOutOfFrames(() -> memory.copy(2 * CHUNK, 0, 2 * CHUNK));
            byte[] expected = new byte[4 * CHUNK];
            System.arraycopy(source, 0, expected, 0, source.length);
            assertNothingWritten(memory, refused, expected);
            filler.fill(0, 2 * CHUNK, (byte) 0);
            memory.copy(2 * CHUNK, 0, 2 * CHUNK);
            System.arraycopy(source, 0, expected, 2 * CHUNK, source.length);
            assertArrayEquals(expected, memory.readBytes(0, expected.length), "with the frames it needs, it copies all");
        }
    }

    @Test
    void aClosedEngineIsNamedAsTheCauseNotAsTooLittleRoom() {
        DedupEngine engine = engine(4);
        SamepageMemoryFactory factory = new SamepageMemoryFactory(engine, engine.createDomain("closing"));
        SamepageMemory memory = (SamepageMemory) factory.apply(new MemoryLimits(1, 4));
        engine.close();
        DedupException made = assertThrows(DedupException.class, () -> factory.apply(new MemoryLimits(1, 4)));
        assertEquals(DedupException.Kind.DESTROYED, made.kind());
        assertTrue(made.getMessage().contains("the engine is closed"), made.getMessage());
        DedupException grown = assertThrows(DedupException.class, () -> memory.grow(1),
                "a grow that needs a new guest of a closed engine is not a full engine's -1");
        assertEquals(DedupException.Kind.DESTROYED, grown.kind());
        assertTrue(grown.getMessage().contains("the engine is closed"), grown.getMessage());
    }

    @Test
    void anEngineWithoutRoomFailsAGrowWithMinusOneAndAnInstantiationWithItsReason() {
        DedupException full = new DedupException(DedupException.Kind.POOL_EXHAUSTED, "engine page id space exhausted");
        // Exhausting the real id space takes 2^19 guests; the seam refuses as the engine would.
        LinearPages noRoomPast64KiB = (LinearPages) Proxy.newProxyInstance(LinearPages.class.getClassLoader(),
                new Class<?>[] {LinearPages.class}, (proxy, method, args) -> {
                    if (method.getName().equals("reserve")) {
                        if ((long) args[0] > CHUNK) {
                            throw full;
                        }
                        return null;
                    }
                    throw new UnsupportedOperationException(method.getName());
                });
        SamepageMemory memory = new SamepageMemory(new MemoryLimits(1, 4), noRoomPast64KiB, null, 4);
        assertEquals(-1, memory.grow(1));
        assertEquals(1, memory.pages());
        ChicoryException made = assertThrows(ChicoryException.class,
                () -> new SamepageMemory(new MemoryLimits(2, 4), noRoomPast64KiB, null, 4));
        assertEquals("the engine cannot hold 2 pages of linear memory: engine page id space exhausted", made.getMessage());
        assertSame(full, made.getCause());
    }

    @Test
    void aClosedMemoryRefusesToGrowInsteadOfMakingANewGuest() {
        try (DedupEngine engine = engine(4)) {
            SamepageMemoryFactory factory = new SamepageMemoryFactory(engine, engine.createDomain("closed"));
            SamepageMemory memory = (SamepageMemory) factory.apply(new MemoryLimits(1, 64));
            String name = memory.guests()[0].name().replaceFirst("#0$", "");
            memory.close();
            DedupException refused = assertThrows(DedupException.class, () -> memory.grow(4));
            assertEquals(DedupException.Kind.DESTROYED, refused.kind());
            assertEquals("wasm memory " + name + " is closed: it cannot grow", refused.getMessage());
            assertEquals(1, memory.pages());
            assertEquals(0, engine.guests().size(), "no guest was made for the closed memory");
            memory.close();     // still idempotent
        }
    }
}
