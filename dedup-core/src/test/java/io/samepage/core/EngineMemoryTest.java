package io.samepage.core;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.samepage.core.internal.linux.NativeMemory;
import io.samepage.hashing.Pages;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

/** Merging gives memory back to the operating system, and the engine's metadata stays in budget. */
class EngineMemoryTest {

    private static final int PAGE = Pages.PAGE_SIZE;
    private static final int PAGES = 16_384;

    @Test
    void mergingTwoIdenticalGuestsDropsTheProcessRssByOneGuest() throws IOException {
        // 256 warm frames (1 MiB) stay resident for reuse; the rest of the freed guest goes back.
        Assumptions.assumeTrue(NativeMemory.available(), "frames go back to the OS only where madvise is available");
        EngineContext context = new EngineContext().poolBytes(256L << 20).hashSeed(9).warmFrames(256);
        context.knobs().smartScan(false);
        try (DedupEngine engine = DedupEngine.create(context.conclude())) {
            MergeDomain domain = engine.createDomain("d");
            Guest a = engine.createGuest(domain, "a", (long) PAGES * PAGE);
            Guest b = engine.createGuest(domain, "b", (long) PAGES * PAGE);
            byte[] page = new byte[PAGE];
            SplittableRandom random = new SplittableRandom(42);
            long before = rssAnonKib();
            for (int p = 0; p < PAGES; p++) {
                random.nextBytes(page);
                a.write((long) p * PAGE, page, 0, PAGE);
                b.write((long) p * PAGE, page, 0, PAGE);
            }
            long written = rssAnonKib();
            engine.scanner().scanFullPass();
            engine.scanner().scanFullPass();
            long merged = rssAnonKib();
            System.out.printf("RssAnon KiB: before %d, two 64 MiB guests written %d, merged %d%n", before, written, merged);
            assertEquals(PAGES, engine.counters().pagesSharing());
            long guestKib = (long) PAGES * PAGE / 1024;
            assertTrue(written - before >= guestKib * 3 / 2, "writing two guests grew RssAnon by " + (written - before));
            assertTrue(written - merged >= guestKib * 3 / 4, "merging shrank RssAnon by " + (written - merged)
                    + " KiB, one guest is " + guestKib + " KiB");
        }
    }

    @Test
    void metadataIsAtMostSixteenBytesPerGuestPageAndPerFrame() {
        EngineContext context = new EngineContext().poolBytes(64L << 20).hashSeed(9);
        try (DedupEngine engine = DedupEngine.create(context.conclude())) {
            MergeDomain domain = engine.createDomain("d");
            long guestPages = 0;
            for (int i = 0; i < 4; i++) {
                guestPages += engine.createGuest(domain, "g" + i, 64L << 20).pageCount();
            }
            long frames = (64L << 20) / PAGE;
            long budget = 16 * guestPages + 16 * frames;
            long fixed = 4 * 256 * 32 + 2 * 64 * 16 + 4096;
            assertTrue(engine.metadataBytes() <= budget + fixed,
                    "metadata " + engine.metadataBytes() + " bytes for " + guestPages + " guest pages and " + frames
                            + " frames");
        }
    }

    private static long rssAnonKib() throws IOException {
        for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
            if (line.startsWith("RssAnon:")) {
                return Long.parseLong(line.replaceAll("\\D", ""));
            }
        }
        throw new IOException("no RssAnon line in /proc/self/status");
    }
}
