package io.samepage.core;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.samepage.hashing.Pages;
import java.util.Arrays;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/** The engine's KSM behaviour on small, hand-built guests, with exact counter values. */
class MergingTest {

    private static final int PAGE = Pages.PAGE_SIZE;

    private DedupEngine engine;

    private DedupEngine engine(EngineContext context) {
        if (context.poolBytes() == EngineContext.DEFAULT_POOL_BYTES) {
            context.poolBytes(64L << 20);
        }
        engine = DedupEngine.create(context.hashSeed(1).conclude());
        return engine;
    }

    @AfterEach
    void close() {
        if (engine != null) {
            engine.close();
        }
    }

    private static byte[] page(int tag) {
        byte[] bytes = new byte[PAGE];
        Arrays.fill(bytes, (byte) tag);
        bytes[0] = 1;
        return bytes;
    }

    /** Two full scans: the first records each page's hash, the second merges stable pages. */
    private static void scanTwice(DedupEngine engine) {
        engine.scanner().scanFullPass();
        engine.scanner().scanFullPass();
    }

    @Test
    void identicalPagesInThreeGuestsShareOneFrame() {
        DedupEngine e = engine(new EngineContext());
        MergeDomain domain = e.createDomain("tenant");
        Guest[] guests = new Guest[3];
        for (int i = 0; i < 3; i++) {
            guests[i] = e.createGuest(domain, "vm" + i, 4 * PAGE);
            guests[i].write(0, page(7), 0, PAGE);
            guests[i].write(PAGE, page(10 + i), 0, PAGE);
        }
        long before = e.framesInUse();
        scanTwice(e);
        EngineCounters c = e.counters();
        assertEquals(1, c.pagesShared());
        assertEquals(2, c.pagesSharing());
        assertEquals(3, c.pagesUnshared());
        assertEquals(0, c.pagesVolatile());
        assertEquals(before - 2, e.framesInUse());
        assertEquals(1, guests[0].counters().mergingPages());
        byte[] read = new byte[PAGE];
        for (Guest g : guests) {
            g.read(0, read, 0, PAGE);
            assertArrayEquals(page(7), read);
        }
    }

    @Test
    void writeAfterMergeDoesNotLeakIntoOtherGuest() {
        DedupEngine e = engine(new EngineContext());
        MergeDomain domain = e.createDomain("tenant");
        Guest a = e.createGuest(domain, "a", PAGE);
        Guest b = e.createGuest(domain, "b", PAGE);
        a.write(0, page(3), 0, PAGE);
        b.write(0, page(3), 0, PAGE);
        scanTwice(e);
        assertEquals(1, e.counters().pagesSharing());
        a.write(100, new byte[] {42}, 0, 1);
        assertEquals(42, a.readByte(100));
        assertEquals(3, b.readByte(100));
        EngineCounters c = e.counters();
        assertEquals(1, c.pagesShared());
        assertEquals(0, c.pagesSharing());
        long frames = e.framesInUse();
        b.write(0, new byte[] {9}, 0, 1);
        assertEquals(frames, e.framesInUse(), "the last mapper writes the frame in place, no copy");
        assertEquals(0, e.counters().pagesShared());
        assertEquals(9, b.readByte(0));
        assertEquals(1, a.readByte(0));
    }

    @Test
    void pagesNeverMergeAcrossDomains() {
        DedupEngine e = engine(new EngineContext());
        Guest a = e.createGuest(e.createDomain("one"), "a", PAGE);
        Guest b = e.createGuest(e.createDomain("two"), "b", PAGE);
        a.write(0, page(5), 0, PAGE);
        b.write(0, page(5), 0, PAGE);
        scanTwice(e);
        assertEquals(0, e.counters().pagesShared());
        assertEquals(2, e.counters().pagesUnshared());
    }

    @Test
    void maxPageSharingStartsAChainOfDuplicates() {
        EngineContext context = new EngineContext();
        context.knobs().maxPageSharing(2);
        DedupEngine e = engine(context);
        MergeDomain domain = e.createDomain("tenant");
        for (int i = 0; i < 5; i++) {
            e.createGuest(domain, "vm" + i, PAGE).write(0, page(9), 0, PAGE);
        }
        scanTwice(e);
        EngineCounters c = e.counters();
        assertEquals(2, c.pagesShared(), "two full frames; the fifth page has no partner (KSM's rule)");
        assertEquals(2, c.pagesSharing());
        assertEquals(1, c.pagesUnshared());
        assertEquals(1, c.stableNodeChains());
        assertEquals(2, c.stableNodeDups());
        DedupException refused = assertThrows(DedupException.class, () -> e.knobs().maxPageSharing(4));
        assertEquals(DedupException.Kind.KNOB_REFUSED, refused.kind(), refused.getMessage());
        assertEquals(DedupException.Kind.INVALID_ARGUMENT,
                assertThrows(DedupException.class, () -> e.knobs().maxPageSharing(1)).kind());
    }

    @Test
    void runTwoUnmergesEverythingAndStops() {
        EngineContext context = new EngineContext();
        context.knobs().useZeroPages(true);
        DedupEngine e = engine(context);
        MergeDomain domain = e.createDomain("tenant");
        Guest a = e.createGuest(domain, "a", 2 * PAGE);
        Guest b = e.createGuest(domain, "b", 2 * PAGE);
        a.write(0, page(4), 0, PAGE);
        b.write(0, page(4), 0, PAGE);
        a.write(PAGE, new byte[PAGE], 0, PAGE);
        long written = e.framesInUse();
        scanTwice(e);
        assertEquals(1, e.counters().ksmZeroPages());
        assertEquals(1, e.counters().pagesSharing());
        assertEquals(written - 2, e.framesInUse());
        e.knobs().run(ScanKnobs.RUN_UNMERGE);
        e.scanner().doWork();
        assertEquals(ScanKnobs.RUN_STOP, e.knobs().run());
        EngineCounters c = e.counters();
        assertEquals(0, c.pagesShared());
        assertEquals(0, c.pagesSharing());
        assertEquals(0, c.ksmZeroPages());
        assertEquals(written, e.framesInUse());
        assertEquals(4, b.readByte(5));
        assertEquals(0, a.readByte(PAGE + 5));
    }

    @Test
    void volatilePagesWaitForAnUnchangedVisit() {
        DedupEngine e = engine(new EngineContext());
        MergeDomain domain = e.createDomain("tenant");
        Guest a = e.createGuest(domain, "a", PAGE);
        Guest b = e.createGuest(domain, "b", PAGE);
        a.write(0, page(6), 0, PAGE);
        b.write(0, page(6), 0, PAGE);
        e.scanner().scanFullPass();
        assertEquals(2, e.counters().pagesVolatile(), "visited once");
        b.write(0, page(8), 0, PAGE);
        e.scanner().scanFullPass();
        assertEquals(0, e.counters().pagesSharing(), "b changed since its last visit, so it waits");
        assertEquals(1, e.counters().pagesVolatile());
        b.write(0, page(6), 0, PAGE);
        e.scanner().scanFullPass();
        assertEquals(0, e.counters().pagesSharing(), "b changed again");
        e.scanner().scanFullPass();
        assertEquals(1, e.counters().pagesSharing(), "unchanged for one visit: merged");
    }

    @Test
    void badAccessesThrowAndChangeNothing() {
        DedupEngine e = engine(new EngineContext().poolBytes(3 * PAGE));
        Guest a = e.createGuest(e.createDomain("tenant"), "a", 4 * PAGE);
        assertThrows(DedupException.class, () -> a.write(4 * PAGE - 1, new byte[2], 0, 2));
        assertThrows(DedupException.class, () -> a.read(-1, new byte[1], 0, 1));
        a.write(0, page(1), 0, PAGE);
        a.write(PAGE, page(2), 0, PAGE);
        DedupException full = assertThrows(DedupException.class, () -> a.fill(0, 4 * PAGE, (byte) 5));
        assertTrue(full.getMessage().contains("exhausted"), full.getMessage());
        assertEquals(1, a.readByte(0));
        assertEquals(2, a.readByte(PAGE + 1));
        assertEquals(0, a.readByte(2 * PAGE));
        a.destroy();
        assertThrows(DedupException.class, () -> a.readByte(0));
        assertEquals(1, e.framesInUse());
    }
}
