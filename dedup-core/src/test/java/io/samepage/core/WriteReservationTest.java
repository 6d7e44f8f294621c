package io.samepage.core;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertDoesNotThrow;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.samepage.hashing.Pages;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.Arrays;
import org.junit.jupiter.api.Test;

/**
 * A write that throws part way, after a page took a frame: its reservation ({@link WriteReservation})
 * gives back exactly the frames still reserved, not one that a page took before the throw, and the page
 * it did not finish is left as it was ({@link GuestWrites}).
 */
class WriteReservationTest {

    private static final int PAGE = Pages.PAGE_SIZE;

    private static byte[] content(int tag) {
        byte[] bytes = new byte[PAGE];
        Arrays.fill(bytes, (byte) tag);
        bytes[7] = 1;
        return bytes;
    }

    /**
     * A write whose source fails part way (the caller's arena, closed by another thread once the engine
     * remapped the first page: injected through the mapping) throws the source's exception and leaves
     * the pool's reservations as they were: another writer still holds the frame it reserved before, and
     * takes it. The write gave that frame back as its own: it counted the frame a page took before the
     * throw neither as spent nor as refused.
     */
    @Test
    void anExceptionAfterAPageTookItsFrameLeavesOtherWritersReservationsAsTheyWere() {
        Arena arena = Arena.ofShared();
        try (DedupEngine engine = DedupEngine.create(new EngineContext().poolBytes(8L << 20).warmFrames(0).hashSeed(5).conclude())) {
            MergeDomain domain = engine.createDomain("d");
            MemorySegment source = arena.allocate(2 * PAGE);
            ClosingOnRemap[] host = new ClosingOnRemap[1];
            Guest vm = engine.createGuest(domain, "vm", 2L * PAGE,
                    (first, pages) -> host[0] = new ClosingOnRemap(first, pages, arena));
            Guest twin = engine.createGuest(domain, "twin", 2L * PAGE);
            for (Guest g : new Guest[] {vm, twin}) {
                g.write(0, content(3), 0, PAGE);
                g.write(PAGE, content(5), 0, PAGE);
            }
            engine.scanner().scanFullPass();
            engine.scanner().scanFullPass();
            assertEquals(2, engine.counters().pagesSharing(), "both of vm's pages share twin's frames");
            FramePool pool = engine.pool();
            int available = pool.framesAvailable();
            assertTrue(pool.tryReserve(1), "another writer's reservation, held across the write");

            IllegalStateException closed = assertThrows(IllegalStateException.class, () -> vm.write(0, source));

            assertEquals(0, closed.getSuppressed().length, "nothing thrown while giving the reservation back: "
                    + Arrays.toString(closed.getSuppressed()));
            int othersFrame = assertDoesNotThrow(pool::allocateReserved, "the other writer takes the frame it reserved");
            pool.free(othersFrame);
            assertEquals(available - 1, pool.framesAvailable(), "every frame the write reserved is available again "
                    + "but the one its first page broke onto");
            assertEquals(1, engine.counters().pagesSharing(), "vm's second page still shares twin's frame");
            assertArrayEquals(content(5), page(vm, 1), "the second page as it was");
            host[0].recorded.assertAgreesWith(vm, "after the failed write");
            EngineInvariants.assertConsistent(engine, null, "after the failed write");
        } finally {
            if (arena.scope().isAlive()) {
                arena.close();
            }
        }
    }

    /**
     * A whole-page write whose source fails as it is read (a mapped file truncated under it) leaves the merged page
     * on its shared frame and the engine as it was: the frame the page took is filled before it is mapped,
     * so it was never mapped. The page moved onto that frame first, whose bytes a whole-page write leaves
     * unspecified (here another guest's freed page, kept warm), and read them afterwards.
     */
    @Test
    void aWholePageWriteWhoseSourceFailsLeavesThePageOnItsSharedFrame() throws java.io.IOException {
        try (DedupEngine engine = DedupEngine.create(new EngineContext().poolBytes(8L << 20).warmFrames(64).hashSeed(5).conclude())) {
            MergeDomain domain = engine.createDomain("d");
            Guest a = engine.createGuest(domain, "a", PAGE);
            Guest b = engine.createGuest(domain, "b", PAGE);
            a.write(0, content(3), 0, PAGE);
            b.write(0, content(3), 0, PAGE);
            engine.scanner().scanFullPass();
            engine.scanner().scanFullPass();
            assertEquals(1, engine.counters().pagesSharing(), "a's and b's pages share a frame");
            Guest other = engine.createGuest(domain, "other", PAGE);
            other.write(0, content(77), 0, PAGE);
            other.fill(0, PAGE, (byte) 0);      // its frame goes back to the pool, kept warm with its bytes
            EngineCounters before = engine.counters();
            int available = engine.pool().framesAvailable();
            // A source that passes the write's up-front check and fails as it is read: a mapped file
            // truncated under it (SIGBUS, which the JVM turns into an InternalError).
            java.nio.file.Path file = java.nio.file.Files.createTempFile("source", ".img");
            try (Arena arena = Arena.ofConfined();
                    java.nio.channels.FileChannel channel = java.nio.channels.FileChannel.open(file,
                            java.nio.file.StandardOpenOption.READ, java.nio.file.StandardOpenOption.WRITE)) {
                channel.write(java.nio.ByteBuffer.wrap(content(9)));
                MemorySegment source = channel.map(java.nio.channels.FileChannel.MapMode.READ_ONLY, 0, PAGE, arena);
                channel.truncate(0);
                assertThrows(InternalError.class, () -> a.write(0, source));
            } finally {
                java.nio.file.Files.delete(file);
            }

            assertArrayEquals(content(3), page(a, 0), "a's page reads as before");
            assertEquals(before, engine.counters(), "still shared, nothing counted");
            assertEquals(available, engine.pool().framesAvailable(), "the frame the page took is back");
            EngineInvariants.assertConsistent(engine, null, "after the failed write");
        }
    }

    /** A host that mirrors like {@link RecordingMapping} and closes {@code arena} once it remapped a page writable. */
    private static final class ClosingOnRemap extends ForwardingMapping {
        private final Arena arena;

        ClosingOnRemap(int first, int pages, Arena arena) {
            super(first, pages);
            this.arena = arena;
        }

        @Override
        public void map(int page, int frame, boolean writable) {
            super.map(page, frame, writable);
            if (writable) {
                arena.close();      // the break's remap went through; the source fails from now on
            }
        }
    }

    private static byte[] page(Guest guest, int page) {
        byte[] bytes = new byte[PAGE];
        guest.read((long) page * PAGE, bytes, 0, PAGE);
        return bytes;
    }
    /**
     * A source this thread cannot read is bad input: refused with one line naming the guest and why,
     * before any page is written. It went page by page: of a two-page write from a closed arena, the
     * first (private) page was marked dirty and the write failed with the segment's own exception.
     */
    @Test
    void aSourceThisThreadCannotReadIsRefusedBeforeAnyPageIsWritten() throws Exception {
        try (DedupEngine engine = DedupEngine.create(new EngineContext().poolBytes(8L << 20).warmFrames(0).hashSeed(5).conclude())) {
            Guest vm = engine.createGuest(engine.createDomain("d"), "vm", 2L * PAGE);
            vm.write(0, content(3), 0, PAGE);
            vm.write(PAGE, content(5), 0, PAGE);
            Arena closedArena = Arena.ofShared();
            MemorySegment closed = closedArena.allocate(2 * PAGE);
            closedArena.close();
            DedupException refused = assertThrows(DedupException.class, () -> vm.write(0, closed));
            assertEquals(DedupException.Kind.INVALID_ARGUMENT, refused.kind());
            assertEquals("guest vm: the source of a write of 8192 bytes at 0x0 cannot be read by this thread (its arena "
                    + "is closed); nothing was written", refused.getMessage());

            try (Arena confined = Arena.ofConfined()) {
                MemorySegment elsewhere = confined.allocate(PAGE);
                DedupException[] other = new DedupException[1];
                Thread writer = Thread.ofPlatform().start(() -> other[0] = assertThrows(DedupException.class,
                        () -> vm.write(PAGE, elsewhere)));
                writer.join();
                assertEquals(DedupException.Kind.INVALID_ARGUMENT, other[0].kind());
                assertTrue(other[0].getMessage().contains("confined to another thread"), other[0].getMessage());
            }
            byte[] both = new byte[2 * PAGE];
            vm.read(0, both, 0, both.length);
            assertArrayEquals(content(3), Arrays.copyOfRange(both, 0, PAGE));
            assertArrayEquals(content(5), Arrays.copyOfRange(both, PAGE, 2 * PAGE));
            EngineInvariants.assertConsistent(engine, null, "after the refused writes");
        }
    }
}
