package io.samepage.kvm;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.samepage.core.DedupEngine;
import io.samepage.core.DedupException;
import io.samepage.core.EngineContext;
import io.samepage.core.MergeDomain;
import java.lang.foreign.MemorySegment;
import java.util.Arrays;
import org.junit.jupiter.api.Test;

/**
 * A {@code mmap(MAP_SHARED|MAP_FIXED)} of guest pages that fails after the kernel unmapped the old pages
 * (Linux's MAP_FIXED unmaps first; some failures after that, ENOMEM among them, leave the old mapping
 * gone): the guest memory's state must stay true, so that no read, write or protection change goes
 * through a mapping other than the frame the engine holds. Driven through a stand-in for the kernel,
 * since a real host cannot be made to fail that way on demand.
 */
class FailedRemapTest {

    private static final int PAGE = MappedGuestMemory.PAGE_BYTES;
    private static final int ENOMEM = 12;

    @Test
    void aMapFixedThatUnmapsAndFailsLeavesEveryPageOnItsOldFrame() {
        try (UnmapThenFail kernel = new UnmapThenFail(4);
             MemfdFrames frames = MemfdFrames.create("failed-remap", 8, MappingBudget.host(), kernel)) {
            MappedGuestMemory guest = frames.mapGuest(4);
            for (int f = 0; f < 4; f++) {
                frames.write(f, 0, filled(0x10 + f), 0, PAGE);
            }
            guest.map(0, 0, 4, true);
            guest.protect(2, false);                            // a merge compare's read-only page among them

            kernel.failures = 1;
            KvmException refused = assertThrows(KvmException.class, () -> guest.map(0, 4, 4, false));
            assertEquals(KvmException.Kind.REFUSED, refused.kind());
            assertEquals(ENOMEM, refused.errno());

            for (int p = 0; p < 4; p++) {
                assertEquals(p, guest.frame(p), "page " + p + " still maps its frame");
                assertEquals(p != 2, guest.writable(p), "page " + p + " kept its protection");
                assertArrayEquals(filled(0x10 + p), read(guest, p), "page " + p + " reads its frame, not what replaced it");
            }
            assertTrue(refused.getMessage().contains("guest pages 0..3 map what they mapped before"), refused.getMessage());
            guest.write(10, new byte[] {0x7F}, 0, 1);
            byte[] frame = new byte[1];
            frames.read(0, 10, frame, 0, 1);
            assertArrayEquals(new byte[] {0x7F}, frame, "a write to page 0 lands in frame 0");
        }
    }

    @Test
    void aPageThatCannotBeMappedBackFailsLoudlyUntilItIsMappedAgain() {
        try (UnmapThenFail kernel = new UnmapThenFail(1);
             MemfdFrames frames = MemfdFrames.create("lost-page", 4, MappingBudget.host(), kernel)) {
            MappedGuestMemory guest = frames.mapGuest(3);
            for (int f = 0; f < 3; f++) {
                frames.write(f, 0, filled(0x20 + f), 0, PAGE);
            }
            guest.map(0, 0, 3, true);

            kernel.failures = 2;                                // the break's remap, and mapping the old frame back
            KvmException refused = assertThrows(KvmException.class, () -> guest.map(1, 3, true));

            IllegalStateException read = assertThrows(IllegalStateException.class, () -> read(guest, 1),
                    "a read of the lost page fails instead of returning what the kernel left there");
            assertTrue(read.getMessage().contains("guest page 1"), read.getMessage());
            assertEquals(-1, guest.frame(1), "page 1 maps no frame now");
            assertFalse(guest.writable(1));
            assertTrue(refused.getMessage().contains("1 of guest pages 1..1 could not be mapped back"), refused.getMessage());
            assertThrows(IllegalStateException.class, () -> guest.write(PAGE, new byte[1], 0, 1));
            assertArrayEquals(filled(0x20), read(guest, 0), "its neighbours are untouched");
            assertArrayEquals(filled(0x22), read(guest, 2));

            guest.map(1, 3, true);                              // the engine's next break maps it again
            assertEquals(3, guest.frame(1));
            guest.write(PAGE, new byte[] {0x33}, 0, 1);
            byte[] frame = new byte[1];
            frames.read(3, 0, frame, 0, 1);
            assertArrayEquals(new byte[] {0x33}, frame, "the page is frame 3 again");
        }
    }

    @Test
    void aLostPageIsMappedBackOntoItsFrameByTheNextProtectionChange() {
        try (UnmapThenFail kernel = new UnmapThenFail(1);
             MemfdFrames frames = MemfdFrames.create("lost-protect", 2, MappingBudget.host(), kernel)) {
            MappedGuestMemory guest = frames.mapGuest(1);
            frames.write(0, 0, filled(0x44), 0, PAGE);
            guest.map(0, 0, true);

            kernel.failures = 2;
            assertThrows(KvmException.class, () -> guest.map(0, 1, false));
            guest.protect(0, true);                             // the engine's unprotect after a write fault

            assertEquals(0, guest.frame(0), "back on the frame the engine holds for it");
            assertTrue(guest.writable(0));
            assertArrayEquals(filled(0x44), read(guest, 0));
        }
    }

    /**
     * The engine's side: a copy-on-write break whose remap the kernel refuses after unmapping the page
     * leaves the engine's page merged on the shared frame, and the guest's mapping must say and read
     * the same, not what replaced it; the next write breaks sharing normally.
     */
    @Test
    void aRefusedBreakLeavesTheGuestPageReadingTheSharedFrame() {
        int pages = 4;
        try (UnmapThenFail kernel = new UnmapThenFail(1);
             DedupEngine engine = DedupEngine.create(new EngineContext().poolBytes(16L * pages * PAGE).warmFrames(0)
                     .hashSeed(7).frameBacking(MappedGuest.memfdBacking("refused-break", MappingBudget.host(), kernel))
                     .conclude())) {
            engine.knobs().smartScan(false);
            MergeDomain domain = engine.createDomain("d");
            MappedGuest a = MappedGuest.create(engine, domain, "a", (long) pages * PAGE);
            MappedGuest b = MappedGuest.create(engine, domain, "b", (long) pages * PAGE);
            byte[] image = MappedEngineTest.image(pages, 9);
            a.guest().write(0, image, 0, image.length);
            b.guest().write(0, image, 0, image.length);
            for (int scan = 0; scan < 3; scan++) {
                engine.scanner().scanFullPass();
            }
            assertEquals(pages, engine.counters().pagesSharing(), "every page merged");

            kernel.failures = 1;
            DedupException refused = assertThrows(DedupException.class,
                    () -> a.guest().write(2L * PAGE, new byte[] {1}, 0, 1));
            assertEquals(DedupException.Kind.HOST_REFUSED, refused.kind());
            assertEquals(b.memory().frame(2), a.memory().frame(2), "a's page 2 still maps the shared frame");
            assertFalse(a.memory().writable(2));
            assertArrayEquals(image, MappedEngineTest.readAll(a.memory()), "a's mappings read what the engine holds");

            a.guest().write(2L * PAGE, new byte[] {1}, 0, 1);
            byte[] written = image.clone();
            written[2 * PAGE] = 1;
            assertArrayEquals(written, MappedEngineTest.readAll(a.memory()));
            assertArrayEquals(image, MappedEngineTest.readAll(b.memory()), "b kept the shared bytes");
        }
    }

    /**
     * The kernel, except that each of the next {@link #failures} maps first replaces the pages it was to
     * map and then fails with ENOMEM. The old pages are replaced by a zero-filled scratch file rather
     * than left as a hole: a Java read of a hole would kill the JVM, where this reads zeros, as
     * anonymous memory mapped into the hole would.
     */
    private static final class UnmapThenFail implements GuestRangeCalls, AutoCloseable {

        private final MemfdFrames scratch;
        int failures;

        /** Replaces at most {@code pages} pages at a time. */
        UnmapThenFail(int pages) {
            scratch = MemfdFrames.create("unmapped", pages);
        }

        @Override
        public int map(MemorySegment range, long offset, long length, int fd, long fileOffset, boolean writable) {
            if (failures > 0) {
                failures--;
                assertEquals(0, KERNEL.map(range, offset, length, scratch.fd(), 0, true), "replacing the old pages");
                return -ENOMEM;
            }
            return KERNEL.map(range, offset, length, fd, fileOffset, writable);
        }

        @Override
        public int protect(MemorySegment range, long offset, boolean writable) {
            return KERNEL.protect(range, offset, writable);
        }

        @Override
        public int adviseSmallPages(MemorySegment range, long offset, long length) {
            return KERNEL.adviseSmallPages(range, offset, length);
        }

        @Override
        public void close() {
            scratch.close();
        }
    }

    private static byte[] read(MappedGuestMemory guest, int page) {
        byte[] bytes = new byte[PAGE];
        guest.read((long) page * PAGE, bytes, 0, PAGE);
        return bytes;
    }

    private static byte[] filled(int value) {
        byte[] bytes = new byte[PAGE];
        Arrays.fill(bytes, (byte) value);
        return bytes;
    }
}
