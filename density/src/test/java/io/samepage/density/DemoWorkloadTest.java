package io.samepage.density;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.samepage.core.DedupEngine;
import io.samepage.core.EngineContext;
import io.samepage.core.EngineCounters;
import io.samepage.core.Guest;
import io.samepage.core.MergeDomain;
import io.samepage.core.Scanner;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * The engine's counters and copy-on-write on the demo's page mix, and the demo's check that every guest
 * reads back what it wrote. The mix itself is {@link PageMixTest}'s.
 */
class DemoWorkloadTest {

    private static final int PAGE = 4096;
    private static final int GUESTS = 3;
    private static final int PAGES = 400;

    @Test
    void mergingSharesTheOsImageAndWritesAfterMergeBreakOnlyTheirPages() {
        DemoWorkload workload = new DemoWorkload(PageMix.demo(GUESTS, PAGES));
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
        DemoWorkload workload = new DemoWorkload(PageMix.demo(2, 64));
        try (DedupEngine engine = DedupEngine.create(new EngineContext().poolBytes(2L << 20).conclude())) {
            List<Guest> guests = load(engine, workload);
            guests.get(1).write(5 * PAGE + 7, new byte[] {1, 2, 3}, 0, 3);
            DensityException broken = assertThrows(DensityException.class, () -> workload.verify(guests));
            assertEquals(DensityException.Kind.FAILED, broken.kind());
            assertTrue(broken.getMessage().startsWith("guest vm-2 page 5 "), broken.getMessage());
        }
    }

    private static List<Guest> load(DedupEngine engine, DemoWorkload workload) {
        MergeDomain domain = engine.createDomain("demo");
        List<Guest> guests = new ArrayList<>();
        for (int g = 0; g < workload.mix().guests(); g++) {
            Guest guest = engine.createGuest(domain, "vm-" + (g + 1), workload.mix().guestBytes());
            workload.mix().load(g, guest);
            guests.add(guest);
        }
        return guests;
    }
}
