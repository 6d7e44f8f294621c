package io.samepage.core;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;

import io.samepage.hashing.CrcCollisions;
import io.samepage.hashing.HashAlgorithm;
import io.samepage.hashing.Pages;
import java.util.Arrays;
import org.junit.jupiter.api.Test;

/** use_zero_pages never trusts the hash: a page maps the zero frame only after a compare shows it is all zeros. */
class ZeroPageMergeTest {

    private static final int PAGE = Pages.PAGE_SIZE;

    @Test
    void craftedPageThatHashesLikeZerosStaysItsOwnContent() {
        CrcCollisions crafted = new CrcCollisions();
        byte[] evil = crafted.page(new byte[PAGE], 1);
        assertFalse(Arrays.equals(evil, new byte[PAGE]), "the crafted page is not all zeros");
        assertEquals(CrcCollisions.crc(new byte[PAGE], 0), CrcCollisions.crc(evil, 0), "yet its CRC32C halves are the zero page's");
        EngineContext context = new EngineContext().poolBytes(8L << 20).hashAlgorithm(HashAlgorithm.CRC32C).hashSeed(11);
        context.knobs().useZeroPages(true);
        try (DedupEngine engine = DedupEngine.create(context.conclude())) {
            Guest guest = engine.createGuest(engine.createDomain("d"), "g", 2L * PAGE);
            guest.write(0, new byte[PAGE], 0, PAGE);
            engine.scanner().scanFullPass();
            guest.write(0, evil, 0, PAGE);
            engine.scanner().scanFullPass();
            engine.scanner().scanFullPass();
            byte[] read = new byte[PAGE];
            guest.read(0, read, 0, PAGE);
            assertArrayEquals(evil, read, "the page reads back what was written, not zeros");
            assertEquals(0, engine.counters().ksmZeroPages(), "and was not merged with the zero page");
        }
    }

    @Test
    void pageRewrittenWithOtherContentUnderAConstantHashIsNotZeroMerged() {
        EngineContext context = new EngineContext().poolBytes(8L << 20).customHasher(new WeakHashers.Constant());
        context.knobs().useZeroPages(true);
        try (DedupEngine engine = DedupEngine.create(context.conclude())) {
            Guest guest = engine.createGuest(engine.createDomain("d"), "g", PAGE);
            guest.write(0, new byte[PAGE], 0, PAGE);
            engine.scanner().scanFullPass();
            byte[] content = new byte[PAGE];
            content[100] = 42;
            guest.write(0, content, 0, PAGE);
            for (int i = 0; i < 3; i++) {
                engine.scanner().scanFullPass();
            }
            assertEquals(42, guest.readByte(100));
        }
    }
}
