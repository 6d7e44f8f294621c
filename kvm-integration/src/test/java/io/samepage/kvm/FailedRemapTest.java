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
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
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
     * After a refused remap every page not mapped back onto its frame, lost or never mapped, is reserved
     * again ({@code PROT_NONE}, as the range was reserved), not left to whatever the kernel put there: KVM's
     * slot still names those addresses, and a vCPU's stores would land in whatever mapping sits there.
     */
    @Test
    void everyPageNotMappedBackIsReservedAgain() throws IOException {
        try (UnmapThenFail kernel = new UnmapThenFail(3);
             MemfdFrames frames = MemfdFrames.create("reserved-again", 4, MappingBudget.host(), kernel)) {
            MappedGuestMemory guest = frames.mapGuest(3);
            guest.map(0, 0, true);                              // pages 1 and 2 map no frame yet

            kernel.failures = 2;                                // the remap, and mapping page 0 back
            KvmException refused = assertThrows(KvmException.class, () -> guest.map(0, 1, 3, true));

            assertTrue(refused.getMessage().contains("1 of guest pages 0..2 could not be mapped back"), refused.getMessage());
            for (int page = 0; page < 3; page++) {
                assertEquals(RESERVATION, mappingAt(guest, page), "page " + page + " is part of the reservation again");
            }
            assertFalse(refused.getMessage().contains("holes"), refused.getMessage());
        }
    }

    /**
     * A page that can neither be mapped back nor reserved again is a hole, and another mapping of this
     * process may be placed there (here the stand-in's scratch mapping plays it): the refusal says so, no
     * later map over the page replaces that mapping, and closing the memory leaves it alone.
     */
    @Test
    void aHoleThatCannotBeReservedAgainIsNeverMappedOverNorUnmapped() throws IOException {
        try (UnmapThenFail kernel = new UnmapThenFail(1);
             MemfdFrames frames = MemfdFrames.create("hole", 4, MappingBudget.host(), kernel)) {
            MappedGuestMemory guest = frames.mapGuest(3);
            guest.map(0, 0, 3, true);

            kernel.failures = 2;
            kernel.reserveFailures = 1;
            KvmException refused = assertThrows(KvmException.class, () -> guest.map(1, 3, true));
            assertTrue(refused.getMessage().contains("1 of them could not be reserved again either (errno 12): the "
                    + "guest's address range has holes there, which another mapping of this process may take"),
                    refused.getMessage());
            String other = mappingAt(guest, 1);
            assertTrue(other.endsWith("/memfd:unmapped (deleted)"), "the other mapping sits in the hole: " + other);

            KvmException mapOver = assertThrows(KvmException.class, () -> guest.map(1, 3, true));
            assertTrue(mapOver.getMessage().contains("guest page 1 is a hole"), mapOver.getMessage());
            assertThrows(KvmException.class, () -> guest.protect(1, true), "nor is it mapped back by a protection change");
            assertEquals(other, mappingAt(guest, 1), "the other mapping is untouched");
            assertEquals(-1, guest.frame(1));

            long page1 = guest.hostAddress() + PAGE;
            guest.close();
            assertEquals(other, mappingAt(page1), "closing the memory did not unmap the other mapping");
            assertEquals(0, GuestRangeCalls.KERNEL.unmap(kernel.range, PAGE, PAGE), "the test's own clean-up");
        }
    }

    /**
     * Once nothing holds a hole's address any more, the memory's next mapping operation reserves it
     * again, so the hole is closed before anything else can take it, and the page can be mapped again.
     */
    @Test
    void aHoleIsReservedAgainByTheNextMappingOnceNothingHoldsIt() throws IOException {
        try (UnmapThenFail kernel = new UnmapThenFail(1);
             MemfdFrames frames = MemfdFrames.create("hole-closed", 4, MappingBudget.host(), kernel)) {
            MappedGuestMemory guest = frames.mapGuest(3);
            guest.map(0, 0, 3, true);
            kernel.failures = 2;
            kernel.reserveFailures = 1;
            assertThrows(KvmException.class, () -> guest.map(1, 3, true));
            assertEquals(0, GuestRangeCalls.KERNEL.unmap(kernel.range, PAGE, PAGE), "whatever took the hole goes away");

            guest.protect(0, false);                            // any mapping operation of this memory
            assertEquals(RESERVATION, mappingAt(guest, 1), "the hole is part of the reservation again");

            guest.map(1, 3, true);
            assertEquals(3, guest.frame(1));
            guest.write(PAGE, new byte[] {0x5A}, 0, 1);
            byte[] frame = new byte[1];
            frames.read(3, 0, frame, 0, 1);
            assertArrayEquals(new byte[] {0x5A}, frame, "the page is frame 3");
        }
    }

    /** What {@code /proc/self/maps} shows of an anonymous {@code PROT_NONE} private mapping: a reservation. */
    private static final String RESERVATION = "---p";

    /** The permissions and path of the mapping holding guest page {@code page}'s address. */
    private static String mappingAt(MappedGuestMemory guest, int page) throws IOException {
        return mappingAt(guest.hostAddress() + (long) page * PAGE);
    }

    /**
     * The permissions and, if any, the path of the mapping of this process holding {@code address}, from
     * {@code /proc/self/maps}; null if none does. Only ever asked of addresses of a range the test owns.
     */
    private static String mappingAt(long address) throws IOException {
        for (String line : Files.readAllLines(Path.of("/proc/self/maps"), StandardCharsets.ISO_8859_1)) {
            String[] fields = line.split(" +", 6);
            String[] span = fields[0].split("-");
            if (Long.compareUnsigned(Long.parseUnsignedLong(span[0], 16), address) <= 0
                    && Long.compareUnsigned(address, Long.parseUnsignedLong(span[1], 16)) < 0) {
                return fields.length < 6 || fields[5].isBlank() ? fields[1] : fields[1] + " " + fields[5].strip();
            }
        }
        return null;
    }

    /**
     * The kernel, except that each of the next {@link #failures} maps first replaces the pages it was to
     * map and then fails with ENOMEM, and each of the next {@link #reserveFailures} reservations of pages
     * again fails with ENOMEM, changing nothing. The old pages are replaced by a zero-filled scratch file
     * rather than left as a hole: a Java read of a hole would kill the JVM, where this reads zeros, as
     * anonymous memory mapped into the hole would; and where the guest memory fails to reserve them
     * again, it stands for another mapping of this process placed in the hole.
     */
    private static final class UnmapThenFail implements GuestRangeCalls, AutoCloseable {

        private final MemfdFrames scratch;
        int failures;
        int reserveFailures;
        /** The guest range the last map was made in. */
        MemorySegment range;

        /** Replaces at most {@code pages} pages at a time. */
        UnmapThenFail(int pages) {
            scratch = MemfdFrames.create("unmapped", pages);
        }

        @Override
        public int map(MemorySegment range, long offset, long length, int fd, long fileOffset, boolean writable) {
            this.range = range;
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
        public int reserveAgain(MemorySegment range, long offset, long length) {
            if (reserveFailures > 0) {
                reserveFailures--;
                return -ENOMEM;
            }
            return KERNEL.reserveAgain(range, offset, length);
        }

        @Override
        public int reserveIfFree(MemorySegment range, long offset, long length) {
            return KERNEL.reserveIfFree(range, offset, length);
        }

        @Override
        public int unmap(MemorySegment range, long offset, long length) {
            return KERNEL.unmap(range, offset, length);
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
