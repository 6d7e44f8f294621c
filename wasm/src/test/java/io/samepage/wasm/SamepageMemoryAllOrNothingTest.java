package io.samepage.wasm;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import com.dylibso.chicory.runtime.WasmRuntimeException;
import com.dylibso.chicory.wasm.types.MemoryLimits;
import io.samepage.core.DedupEngine;
import io.samepage.core.EngineContext;
import org.junit.jupiter.api.Test;

/**
 * A bulk operation that traps writes nothing (the bulk memory proposal checks bounds before it writes):
 * every byte of the memory reads back as before the call.
 */
class SamepageMemoryAllOrNothingTest {

    private static final int WASM_PAGE = 65536;

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
}
