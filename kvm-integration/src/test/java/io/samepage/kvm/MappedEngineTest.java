package io.samepage.kvm;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.samepage.core.DedupEngine;
import io.samepage.core.EngineContext;
import io.samepage.core.Guest;
import io.samepage.core.MergeDomain;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/**
 * The engine driving mapped guest memory, without KVM: merging mapped guests frees the memfd's blocks
 * and the process's RssShmem; Java writes after merging read back and stay in their guest, seen through
 * the engine and through the guests' own mappings alike; writes made straight into a writable mapping
 * (what a KVM guest does) are seen by the scanner once marked; and a spent mapping budget stops merging
 * with a message instead of an exception.
 */
class MappedEngineTest {

    static final int PAGE = MappedGuestMemory.PAGE_BYTES;

    /** An engine whose frames are a memfd named {@code name}, with room for {@code frames} frames and no warm list. */
    static DedupEngine engine(String name, int frames, MappingBudget budget) {
        return DedupEngine.create(new EngineContext().poolBytes((long) frames * PAGE).warmFrames(0).hashSeed(7)
                .frameBacking(MappedGuest.memfdBacking(name, budget)).conclude());
    }

    @Test
    void mergingMappedGuestsFreesTheMemfdsBlocksAndTheProcessRssShmem() throws IOException {
        int guests = 3;
        int pages = 2048;
        try (DedupEngine engine = engine("merge-test", guests * pages + 256, MappingBudget.host())) {
            MergeDomain domain = engine.createDomain("d");
            byte[] image = image(pages, 1);
            List<MappedGuest> mapped = new ArrayList<>();
            for (int g = 0; g < guests; g++) {
                MappedGuest guest = MappedGuest.create(engine, domain, "vm" + g, (long) pages * PAGE);
                guest.guest().write(0, image, 0, image.length);
                assertEquals(1, guest.memory().kernelMappings(), "a new guest is one run, one kernel mapping");
                mapped.add(guest);
            }
            long allocatedBefore = MappedGuest.allocatedBytes(engine);
            long rssBefore = MemfdFrames.rssShmemBytes();
            assertEquals((long) guests * pages * PAGE, allocatedBefore, "every guest holds its own copy");

            for (int scan = 0; scan < 3; scan++) {
                engine.scanner().scanFullPass();
            }
            long allocatedAfter = MappedGuest.allocatedBytes(engine);
            long rssAfter = MemfdFrames.rssShmemBytes();
            long freed = (long) (guests - 1) * pages * PAGE;
            assertEquals(allocatedBefore - freed, allocatedAfter, "one copy is left");
            assertTrue(rssBefore - rssAfter >= freed * 9 / 10, "RssShmem " + rssBefore + " -> " + rssAfter);
            assertEquals((long) (guests - 1) * pages, engine.counters().pagesSharing());
            long guestMappings = 0;
            for (MappedGuest guest : mapped) {
                guestMappings += guest.memory().kernelMappings();
            }
            assertEquals(memfdMappings("merge-test") - 1, guestMappings, "every memfd mapping but the frame window");
            System.out.printf("mapped merge: memfd %d -> %d KiB, RssShmem %d -> %d KiB, %d guest mappings%n",
                    allocatedBefore >> 10, allocatedAfter >> 10, rssBefore >> 10, rssAfter >> 10, guestMappings);

            Guest writer = mapped.get(1).guest();
            byte[] mine = {1, 2, 3, 4, 5};
            writer.write(10L * PAGE + 100, mine, 0, mine.length);
            byte[] expected = image.clone();
            System.arraycopy(mine, 0, expected, 10 * PAGE + 100, mine.length);
            for (int g = 0; g < guests; g++) {
                byte[] want = g == 1 ? expected : image;
                assertArrayEquals(want, readAll(mapped.get(g).guest()), "guest " + g + " through the engine");
                assertArrayEquals(want, readAll(mapped.get(g).memory()), "guest " + g + " through its mappings");
            }
            assertTrue(mapped.get(1).memory().writable(10), "the writer's page is its own again, writable");
            assertTrue(!mapped.get(0).memory().writable(10) && !mapped.get(2).memory().writable(10),
                    "the others still share the read-only frame");
        }
    }

    @Test
    void writeStraightIntoAWritableMappingIsSeenByTheScannerOnceMarked() {
        int pages = 8;
        try (DedupEngine engine = engine("direct-write", 4 * pages, MappingBudget.host())) {
            engine.knobs().smartScan(false);
            MergeDomain domain = engine.createDomain("d");
            MappedGuest a = MappedGuest.create(engine, domain, "a", (long) pages * PAGE);
            MappedGuest b = MappedGuest.create(engine, domain, "b", (long) pages * PAGE);
            byte[] image = image(pages, 2);
            a.guest().write(0, image, 0, image.length);
            b.guest().write(0, image(pages, 3), 0, image.length);
            for (int scan = 0; scan < 2; scan++) {
                engine.scanner().scanFullPass();
            }
            assertEquals(0, engine.counters().pagesSharing(), "nothing alike yet");

            byte[] twin = new byte[PAGE];
            System.arraycopy(image, 3 * PAGE, twin, 0, PAGE);
            b.memory().write(3L * PAGE, twin, 0, PAGE);             // as a KVM guest would: no engine call
            assertArrayEquals(twin, readPage(b.guest(), 3), "the engine reads the frame the guest wrote");
            for (int scan = 0; scan < 3; scan++) {
                engine.scanner().scanFullPass();
            }
            assertEquals(0, engine.counters().pagesSharing(), "unmarked, the page keeps its old hash: no merge");

            b.guest().markWritten(new long[] {1L << 3});
            for (int scan = 0; scan < 2; scan++) {
                engine.scanner().scanFullPass();
            }
            assertEquals(1, engine.counters().pagesSharing(), "marked, it is rehashed and merges");
            assertTrue(!a.memory().writable(3) && !b.memory().writable(3), "both map the shared frame read-only");
            assertEquals(a.memory().frame(3), b.memory().frame(3));
        }
    }

    @Test
    void spentMappingBudgetStopsMergingWithOneMessageAndBreaksStillWork() throws IOException {
        int pages = 512;
        MappingBudget budget = MappingBudget.of(MappingBudget.mappingsInUse() + 400, 16);
        try (DedupEngine engine = engine("budget-test", 2 * pages + 64, budget)) {
            MergeDomain domain = engine.createDomain("d");
            MappedGuest a = MappedGuest.create(engine, domain, "a", (long) pages * PAGE);
            MappedGuest b = MappedGuest.create(engine, domain, "b", (long) pages * PAGE);
            byte[] imageA = image(pages, 4);
            byte[] imageB = image(pages, 5);
            for (int p = 0; p < pages; p += 2) {                   // every other page alike: each merge maps alone
                System.arraycopy(imageA, p * PAGE, imageB, p * PAGE, PAGE);
            }
            a.guest().write(0, imageA, 0, imageA.length);
            b.guest().write(0, imageB, 0, imageB.length);
            for (int scan = 0; scan < 4; scan++) {
                engine.scanner().scanFullPass();
            }
            long sharing = engine.counters().pagesSharing();
            assertTrue(sharing > 0 && sharing < pages / 2, "merged until the budget ran short: " + sharing);
            String stopped = a.mergingStopped() != null ? a.mergingStopped() : b.mergingStopped();
            assertNotNull(stopped, "merging stopped, saying why");
            assertTrue(stopped.contains("sysctl -w vm.max_map_count="), stopped);
            assertTrue(a.mergesRefused() + b.mergesRefused() > 0);
            // The engine's own mappings, not the process's count: the JVM maps on its own threads meanwhile
            // (MappedGuestMemoryTest#mappingBudgetRefusesARemapBeforeTheLimitAndMapsNothing).
            assertTrue(memfdMappings("budget-test") <= 400 - 16 + MappedGuestMemoryTest.JVM_SLACK,
                    "stopped before the reserve: " + memfdMappings("budget-test") + " mappings of the engine's memfd");

            for (int p = 0; p < pages; p += 2) {                   // break every merged page
                b.guest().write((long) p * PAGE, new byte[] {9}, 0, 1);
                imageB[p * PAGE] = 9;
            }
            assertArrayEquals(imageA, readAll(a.guest()));
            assertArrayEquals(imageB, readAll(b.guest()));
            assertArrayEquals(imageB, readAll(b.memory()), "the mappings agree with the engine");
        }
    }

    @Test
    void softwareEngineRefusesMappedGuests() {
        try (DedupEngine engine = DedupEngine.create(new EngineContext().poolBytes(1 << 20).conclude())) {
            KvmException refused = assertThrows(KvmException.class,
                    () -> MappedGuest.create(engine, engine.createDomain("d"), "g", PAGE));
            assertEquals(KvmException.Kind.UNAVAILABLE, refused.kind());
            assertTrue(refused.getMessage().contains("memfdBacking"), refused.getMessage());
        }
    }

    /** Distinct, non-zero pages, the same for the same seed. */
    static byte[] image(int pages, long seed) {
        byte[] bytes = new byte[pages * PAGE];
        new SplittableRandom(seed).nextBytes(bytes);
        return bytes;
    }

    static byte[] readAll(Guest guest) {
        byte[] bytes = new byte[(int) guest.sizeBytes()];
        guest.read(0, bytes, 0, bytes.length);
        return bytes;
    }

    static byte[] readAll(MappedGuestMemory memory) {
        byte[] bytes = new byte[memory.guestPages() * PAGE];
        memory.read(0, bytes, 0, bytes.length);
        return bytes;
    }

    static byte[] readPage(Guest guest, int page) {
        byte[] bytes = new byte[PAGE];
        guest.read((long) page * PAGE, bytes, 0, PAGE);
        return bytes;
    }

    static long memfdMappings(String name) throws IOException {
        try (var lines = Files.lines(Path.of("/proc/self/maps"))) {
            return lines.filter(line -> line.contains("/memfd:" + name)).count();
        }
    }
}
