package io.samepage.core;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.samepage.hashing.HashAlgorithm;
import io.samepage.hashing.PageHasher;
import io.samepage.hashing.Pages;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/**
 * What the engine tells a guest's {@link PageMapping}, and when: the mapping mirrors the page table
 * after every operation, both pages of a merge are write-protected before their compare and made
 * writable again when it fails, a break maps the writer's new frame writable, a refused protection
 * skips the merge, an all-zero mapped page gives its memory back in place, and the scanner rehashes
 * only the pages the mapping reports written behind the engine's back.
 */
class PageMappingTest {

    private static final int PAGE = Pages.PAGE_SIZE;

    private static DedupEngine engine(EngineContext context) {
        return DedupEngine.create(context.poolBytes(16L << 20).warmFrames(0).hashSeed(3).conclude());
    }

    private static Guest mapped(DedupEngine engine, MergeDomain domain, String name, int pages,
                                RecordingMapping[] into, int index) {
        return engine.createGuest(domain, name, (long) pages * PAGE,
                (first, count) -> into[index] = new RecordingMapping(first, count));
    }

    private static void scan(DedupEngine engine, int fullScans) {
        for (int i = 0; i < fullScans; i++) {
            engine.scanner().scanFullPass();
        }
    }

    /** The mapping names the page table's frame for every page, writable exactly where the page is not merged. */
    private static void assertMirrors(Guest guest, RecordingMapping mapping) {
        for (int page = 0; page < guest.pageCount(); page++) {
            assertEquals(guest.frameAt(page), mapping.frames[page], guest.name() + " page " + page + "'s frame");
            assertEquals(!guest.isMerged(page), mapping.writable[page], guest.name() + " page " + page + " writable");
        }
    }

    @Test
    void mergeWriteProtectsBothPagesBeforeTheCompareAndMapsTheVisitorReadOnlyOntoTheSharedFrame() {
        RecordingMapping[] maps = new RecordingMapping[2];
        try (DedupEngine engine = engine(new EngineContext())) {
            MergeDomain domain = engine.createDomain("d");
            Guest a = mapped(engine, domain, "a", 4, maps, 0);
            Guest b = mapped(engine, domain, "b", 4, maps, 1);
            byte[] page = filled(7);
            a.write(0, page, 0, PAGE);
            b.write(0, page, 0, PAGE);
            scan(engine, 2);

            int shared = a.frameAt(0);
            assertEquals(shared, b.frameAt(0), "merged");
            assertEquals(List.of("protect 0"), maps[0].calls, "the candidate's frame becomes the shared one: read-only");
            assertEquals(List.of("protect 0", "map 0 " + shared + " ro"), maps[1].calls,
                    "the visitor is protected before the compare, then mapped onto the shared frame");
            assertMirrors(a, maps[0]);
            assertMirrors(b, maps[1]);
            assertArrayEquals(page, read(b, 0));
        }
    }

    @Test
    void compareThatFindsUnequalBytesMakesBothPagesWritableAgain() {
        EngineContext context = new EngineContext().customHasher(new ZeroOrOneHasher());
        RecordingMapping[] maps = new RecordingMapping[2];
        try (DedupEngine engine = engine(context)) {
            MergeDomain domain = engine.createDomain("d");
            Guest a = mapped(engine, domain, "a", 1, maps, 0);
            Guest b = mapped(engine, domain, "b", 1, maps, 1);
            a.write(0, filled(1), 0, PAGE);
            b.write(0, filled(2), 0, PAGE);
            scan(engine, 2);

            assertEquals(List.of("protect 0", "unprotect 0"), maps[0].calls);
            assertEquals(List.of("protect 0", "unprotect 0"), maps[1].calls);
            assertMirrors(a, maps[0]);
            assertMirrors(b, maps[1]);
            assertEquals(0, engine.counters().pagesSharing());
        }
    }

    @Test
    void writeToAMergedPageMapsTheWritersCopyWritableAndLeavesTheOtherOnTheSharedFrame() {
        RecordingMapping[] maps = new RecordingMapping[2];
        try (DedupEngine engine = engine(new EngineContext())) {
            MergeDomain domain = engine.createDomain("d");
            Guest a = mapped(engine, domain, "a", 2, maps, 0);
            Guest b = mapped(engine, domain, "b", 2, maps, 1);
            byte[] page = filled(9);
            a.write(PAGE, page, 0, PAGE);
            b.write(PAGE, page, 0, PAGE);
            scan(engine, 2);
            int shared = a.frameAt(1);
            assertEquals(shared, b.frameAt(1));

            b.write(PAGE + 10, new byte[] {42}, 0, 1);
            int copy = b.frameAt(1);
            assertNotEquals(shared, copy);
            assertEquals("map 1 " + copy + " rw", maps[1].calls.getLast());
            assertMirrors(a, maps[0]);
            assertMirrors(b, maps[1]);
            assertArrayEquals(page, read(a, 1), "the other guest is unaffected");

            a.write(PAGE + 20, new byte[] {43}, 0, 1);
            assertEquals("map 1 " + a.frameAt(1) + " rw", maps[0].calls.getLast(),
                    "the last mapper of a mapped page copies too: writing in place would need a remap as well");
            assertMirrors(a, maps[0]);
            byte[] expected = page.clone();
            expected[10] = 42;
            assertArrayEquals(expected, read(b, 1));
            expected = page.clone();
            expected[20] = 43;
            assertArrayEquals(expected, read(a, 1));
            assertEquals(-1, engine.pool().table().refCount(shared), "the shared frame is freed once nobody maps it");
        }
    }

    @Test
    void refusedWriteProtectionSkipsTheMergeAndThrowsNothing() {
        RecordingMapping[] maps = new RecordingMapping[2];
        try (DedupEngine engine = engine(new EngineContext())) {
            MergeDomain domain = engine.createDomain("d");
            Guest a = mapped(engine, domain, "a", 1, maps, 0);
            Guest b = mapped(engine, domain, "b", 1, maps, 1);
            maps[0].allowProtect = false;
            maps[1].allowProtect = false;
            a.write(0, filled(5), 0, PAGE);
            b.write(0, filled(5), 0, PAGE);
            scan(engine, 4);

            assertEquals(0, engine.counters().pagesSharing());
            assertNotEquals(a.frameAt(0), b.frameAt(0));
            assertTrue(maps[1].calls.stream().allMatch(call -> call.equals("protect 0 refused")), maps[1].calls.toString());
            assertMirrors(a, maps[0]);
            assertMirrors(b, maps[1]);
        }
    }

    @Test
    void allZeroMappedPageGivesItsMemoryBackInPlaceAndIsPassedByUntilWritten() {
        RecordingMapping[] maps = new RecordingMapping[1];
        try (DedupEngine engine = engine(new EngineContext())) {
            Guest guest = mapped(engine, engine.createDomain("d"), "g", 3, maps, 0);
            long frames = engine.framesInUse();
            guest.write(PAGE, new byte[PAGE], 0, PAGE);            // written, all zeros
            guest.write(2L * PAGE, filled(4), 0, PAGE);
            scan(engine, 2);

            assertTrue((guest.stateAt(1) & PageTable.HOLE) != 0, "page 1 is a hole again");
            assertEquals(List.of("protect 1", "unprotect 1"), maps[0].calls, "protected for the zero check; no remap");
            assertEquals(frames, engine.framesInUse(), "it keeps its own frame");
            long scanned = engine.scanner().pagesScanned();
            scan(engine, 1);
            assertEquals(1, engine.scanner().pagesScanned() - scanned, "only page 2 is visited; holes are passed by");

            guest.fill(2L * PAGE, PAGE, (byte) 0);
            assertTrue((guest.stateAt(2) & PageTable.HOLE) != 0, "a whole-page zero fill releases in place at once");
            assertArrayEquals(new byte[PAGE], read(guest, 2));
            assertMirrors(guest, maps[0]);
            scan(engine, 1);
            assertEquals(0, engine.counters().pagesVolatile() + engine.counters().pagesUnshared(),
                    "holes are not tracked pages");
        }
    }

    @Test
    void scannerRehashesOnlyThePagesTheMappingReportsWrittenBehindItsBack() {
        RecordingMapping[] maps = new RecordingMapping[1];
        EngineContext context = new EngineContext();
        context.knobs().smartScan(false);       // so that no visit is skipped for staying unique
        try (DedupEngine engine = engine(context)) {
            Guest guest = mapped(engine, engine.createDomain("d"), "g", 64, maps, 0);
            byte[] bytes = new byte[64 * PAGE];
            new SplittableRandom(11).nextBytes(bytes);
            guest.write(0, bytes, 0, bytes.length);
            maps[0].tellsWrites = false;
            scan(engine, 2);
            assertEquals(64, hashedInOneFullScan(engine), "without a dirty log every page is rehashed");

            maps[0].tellsWrites = true;
            assertEquals(0, hashedInOneFullScan(engine), "a mostly idle guest costs no hashing");

            MemorySegment frames = engine.pool().memory();
            frames.set(ValueLayout.JAVA_BYTE, FramePool.offsetOf(guest.frameAt(5)) + 100, (byte) 1);
            assertEquals(0, hashedInOneFullScan(engine), "a write nobody reports is not seen");
            maps[0].wroteBehindTheEnginesBack(5);
            assertEquals(1, hashedInOneFullScan(engine), "the reported page, and only it");
            assertEquals(1, read(guest, 5)[100], "reads see the write at once: they go to the frame");

            maps[0].dirtyLogFails = true;
            assertEquals(64, hashedInOneFullScan(engine), "a dirty log that cannot be read: every page is rehashed");
        }
    }

    @Test
    void closingTheEngineTakesEveryMappingDown() {
        RecordingMapping[] maps = new RecordingMapping[2];
        DedupEngine engine = engine(new EngineContext());
        MergeDomain domain = engine.createDomain("d");
        mapped(engine, domain, "g", 8, maps, 0);
        mapped(engine, domain, "h", 8, maps, 1);
        maps[1].refuseUnmap = true;         // the host refuses one: the engine closes all the same
        engine.close();
        assertTrue(maps[0].unmapped, "a closed engine's guests are destroyed: their mappings are told");
        assertFalse(maps[1].unmapped);
        assertTrue(engine.guests().isEmpty());
    }

    /**
     * A mapping whose take-down throws an {@link Error} (not a refusal) does not stop the close: the guests
     * after it are taken down too and the error is thrown at the end. Before, the close stopped there with
     * {@code closed} set, so the later guests' mappings stayed up for good.
     */
    @Test
    void aMappingThatThrowsAnErrorOnCloseStopsNoOtherGuestsTakeDown() {
        RecordingMapping[] maps = new RecordingMapping[3];
        InternalError error = new InternalError("injected: the VMM's unmap failed");
        DedupEngine engine = engine(new EngineContext());
        MergeDomain domain = engine.createDomain("d");
        mapped(engine, domain, "g", 8, maps, 0);
        engine.createGuest(domain, "h", 8L * PAGE, (first, pages) -> new ForwardingMapping(maps[1] = new RecordingMapping(first, pages)) {
            @Override
            public void unmapAll() {
                throw error;
            }
        });
        mapped(engine, domain, "i", 8, maps, 2);
        assertSame(error, assertThrows(InternalError.class, engine::close));
        assertTrue(maps[0].unmapped);
        assertFalse(maps[1].unmapped);
        assertTrue(maps[2].unmapped, "the guest after the one whose mapping threw is taken down too");
        assertTrue(engine.guests().isEmpty());
        engine.close();     // closed: nothing more to do
    }

    @Test
    void destroyUnmapsTheGuestBeforeItsFramesAreFreed() {
        RecordingMapping[] maps = new RecordingMapping[1];
        try (DedupEngine engine = engine(new EngineContext())) {
            long before = engine.framesInUse();
            Guest guest = mapped(engine, engine.createDomain("d"), "g", 8, maps, 0);
            assertEquals(before + 8, engine.framesInUse(), "a mapped guest takes its run at once");
            guest.destroy();
            assertTrue(maps[0].unmapped);
            assertEquals(before, engine.framesInUse());
            assertFalse(engine.guests().contains(guest));
        }
    }

    /**
     * A pool with room for one large mapped guest at a time: once one is destroyed, the next takes the
     * run its frames left (freed and given back to the system, so they read as zeros), as a host that
     * restarts a VM needs, and reads zeros where the first guest wrote. Three in a row.
     */
    @Test
    void aMappedGuestMadeAfterAnotherWasDestroyedTakesTheRunItLeft() {
        RecordingMapping[] maps = new RecordingMapping[1];
        try (DedupEngine engine = engine(new EngineContext())) {
            MergeDomain domain = engine.createDomain("d");
            int pages = engine.pool().framesAvailable() - 16;      // more than half the pool
            for (int round = 0; round < 3; round++) {
                Guest guest = mapped(engine, domain, "vm" + round, pages, maps, 0);
                for (int page = 0; page < pages; page += 97) {
                    assertArrayEquals(new byte[PAGE], read(guest, page), "round " + round + ", page " + page);
                    guest.write((long) page * PAGE, filled(round + 1), 0, PAGE);
                }
                scan(engine, 2);
                assertArrayEquals(filled(round + 1), read(guest, 97));
                guest.destroy();
                assertEquals(1, engine.framesInUse(), "round " + round + ": only the zero frame is in use");
            }
        }
    }

    @Test
    void mappingThatCannotBeMadeCreatesNoGuestAndGivesItsRunBack() {
        try (DedupEngine engine = engine(new EngineContext())) {
            MergeDomain domain = engine.createDomain("d");
            long before = engine.framesInUse();
            DedupException refused = assertThrows(DedupException.class, () -> engine.createGuest(domain, "g",
                    1000L * PAGE, (first, count) -> {
                        throw new IllegalStateException("no address space");
                    }));
            assertTrue(refused.getMessage().contains("no address space"), refused.getMessage());
            assertEquals(before, engine.framesInUse());
            assertTrue(engine.guests().isEmpty());
        }
    }

    private static long hashedInOneFullScan(DedupEngine engine) {
        long before = engine.scanner().pagesHashed();
        engine.scanner().scanFullPass();
        return engine.scanner().pagesHashed() - before;
    }

    private static byte[] read(Guest guest, int page) {
        byte[] bytes = new byte[PAGE];
        guest.read((long) page * PAGE, bytes, 0, PAGE);
        return bytes;
    }

    private static byte[] filled(int value) {
        byte[] bytes = new byte[PAGE];
        Arrays.fill(bytes, (byte) value);
        return bytes;
    }

    /** 0 for the zero page, 1 for every other: every non-zero page is every other's candidate. */
    private static final class ZeroOrOneHasher implements PageHasher {
        @Override
        public long hash(MemorySegment memory, long offset) {
            return Pages.isZeroPage(memory, offset) ? 0 : 1;
        }

        @Override
        public HashAlgorithm algorithm() {
            return HashAlgorithm.defaultAlgorithm();
        }

        @Override
        public long seed() {
            return 0;
        }
    }
}
