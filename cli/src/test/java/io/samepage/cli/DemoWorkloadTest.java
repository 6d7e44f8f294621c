package io.samepage.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.samepage.core.DedupEngine;
import io.samepage.core.EngineContext;
import io.samepage.core.EngineCounters;
import io.samepage.core.Guest;
import io.samepage.core.MergeDomain;
import io.samepage.core.Scanner;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.EnumMap;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.Test;

/** The demo's page mix, and the engine's counters and copy-on-write on it. */
class DemoWorkloadTest {

    private static final int PAGE = 4096;
    private static final int GUESTS = 3;
    private static final int PAGES = 400;

    @Test
    void everyGuestHoldsTheDocumentedMix() {
        DemoWorkload workload = new DemoWorkload(GUESTS, PAGES);
        assertEquals(180, workload.osPages());
        assertEquals(100, workload.zeroedPages());
        assertEquals(20, workload.writtenAfterBootPages());
        assertEquals(100, workload.uniquePages());
        for (int g = 0; g < GUESTS; g++) {
            Map<DemoWorkload.Kind, Integer> counts = new EnumMap<>(DemoWorkload.Kind.class);
            for (int p = 0; p < PAGES; p++) {
                counts.merge(workload.kindOf(g, p), 1, Integer::sum);
            }
            assertEquals(Map.of(DemoWorkload.Kind.OS_IMAGE, 180, DemoWorkload.Kind.ZEROED, 100,
                    DemoWorkload.Kind.WRITTEN_AFTER_BOOT, 20, DemoWorkload.Kind.UNIQUE, 100), counts);
        }
    }

    @Test
    void onlyOsImagePagesAreIdenticalAcrossGuests() {
        DemoWorkload workload = new DemoWorkload(GUESTS, PAGES);
        Map<ByteBuffer, Set<Integer>> holders = new HashMap<>();
        byte[] page = new byte[PAGE];
        for (int g = 0; g < GUESTS; g++) {
            for (int p = 0; p < PAGES; p++) {
                workload.bootContent(g, p, page);
                DemoWorkload.Kind kind = workload.kindOf(g, p);
                if (kind == DemoWorkload.Kind.ZEROED) {
                    assertArrayEquals(new byte[PAGE], page);
                    continue;
                }
                Set<Integer> guests = holders.computeIfAbsent(ByteBuffer.wrap(page.clone()), k -> new HashSet<>());
                assertTrue(guests.add(g), "guest " + g + " holds a " + kind + " page twice");
            }
        }
        long everywhere = holders.values().stream().filter(s -> s.size() == GUESTS).count();
        long alone = holders.values().stream().filter(s -> s.size() == 1).count();
        assertEquals(180, everywhere);
        assertEquals(GUESTS * 120, alone);
        assertEquals(180 + GUESTS * 120, holders.size());
    }

    @Test
    void theSameSizesGiveTheSameBytesAtTheSameAddresses() {
        byte[] a = new byte[PAGE];
        byte[] b = new byte[PAGE];
        DemoWorkload one = new DemoWorkload(GUESTS, PAGES);
        DemoWorkload two = new DemoWorkload(GUESTS, PAGES);
        for (int p = 0; p < PAGES; p++) {
            one.bootContent(2, p, a);
            two.bootContent(2, p, b);
            assertArrayEquals(a, b);
        }
    }

    @Test
    void mergingSharesTheOsImageAndWritesAfterMergeBreakOnlyTheirPages() {
        DemoWorkload workload = new DemoWorkload(GUESTS, PAGES);
        EngineContext context = new EngineContext().poolBytes(8L << 20);
        context.knobs().useZeroPages(true).smartScan(false);
        try (DedupEngine engine = DedupEngine.create(context.conclude())) {
            List<Guest> guests = load(engine, workload);
            engine.scanner().scanUntilStable(Scanner.DEFAULT_MAX_FULL_SCANS_TO_SETTLE);
            workload.verify(guests);
            EngineCounters merged = engine.counters();
            assertEquals(180, merged.pagesShared());
            assertEquals((GUESTS - 1) * 180, merged.pagesSharing());
            assertEquals(GUESTS * 100, merged.ksmZeroPages());
            assertEquals(GUESTS * 120, merged.pagesUnshared());
            long frames = engine.framesInUse();

            workload.writeAfterMerge(guests);
            assertEquals(GUESTS * PAGES, workload.verify(guests));
            int writes = workload.writesAfterMerge();
            EngineCounters written = engine.counters();
            assertEquals(180, written.pagesShared());
            assertEquals((GUESTS - 1) * 180 - writes, written.pagesSharing());
            assertEquals(GUESTS * 100 - writes, written.ksmZeroPages());
            assertEquals(frames + 2L * writes, engine.framesInUse());
        }
    }

    @Test
    void verifyNamesAGuestPageThatReadsOtherBytes() {
        DemoWorkload workload = new DemoWorkload(2, 64);
        try (DedupEngine engine = DedupEngine.create(new EngineContext().poolBytes(2L << 20).conclude())) {
            List<Guest> guests = load(engine, workload);
            guests.get(1).write(5 * PAGE + 7, new byte[] {1, 2, 3}, 0, 3);
            CommandException broken = assertThrows(CommandException.class, () -> workload.verify(guests));
            assertEquals(SamepageCommand.EXIT_FAILURE, broken.exitCode());
            assertTrue(broken.getMessage().startsWith("guest vm-2 page 5 "), broken.getMessage());
        }
    }

    private static List<Guest> load(DedupEngine engine, DemoWorkload workload) {
        MergeDomain domain = engine.createDomain("demo");
        List<Guest> guests = new ArrayList<>();
        for (int g = 0; g < workload.guestCount(); g++) {
            Guest guest = engine.createGuest(domain, "vm-" + (g + 1), (long) workload.pagesPerGuest() * PAGE);
            workload.load(g, guest);
            guests.add(guest);
        }
        return guests;
    }
}
