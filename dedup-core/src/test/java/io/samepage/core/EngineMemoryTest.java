package io.samepage.core;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.samepage.linux.NativeMemory;
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
    void mergingTwoIdenticalGuestsDropsThePoolsResidentMemoryByOneGuest() throws IOException {
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
            long before = residentKib(engine);
            for (int p = 0; p < PAGES; p++) {
                random.nextBytes(page);
                a.write((long) p * PAGE, page, 0, PAGE);
                b.write((long) p * PAGE, page, 0, PAGE);
            }
            long written = residentKib(engine);
            engine.scanner().scanFullPass();
            engine.scanner().scanFullPass();
            long merged = residentKib(engine);
            System.out.printf("pool Rss KiB: before %d, two 64 MiB guests written %d, merged %d%n", before, written, merged);
            assertEquals(PAGES, engine.counters().pagesSharing());
            long guestKib = (long) PAGES * PAGE / 1024;
            assertTrue(written - before >= guestKib * 3 / 2, "writing two guests grew the pool's Rss by " + (written - before));
            assertTrue(written - merged >= guestKib * 3 / 4, "merging shrank the pool's Rss by " + (written - merged)
                    + " KiB, one guest is " + guestKib + " KiB");
        }
    }

    @Test
    void metadataIsAtMostSixteenBytesPerGuestPageAndPerFrameWithIndexesFull() {
        // Half of each guest's pages have a twin in the partner guest, half are unique: after merging,
        // the stable index holds every twin pair's frame and the unstable index every unique page.
        long poolBytes = 256L << 20;
        int guests = 4;
        int pagesPerGuest = 8192;
        EngineContext context = new EngineContext().poolBytes(poolBytes).hashSeed(9);
        context.knobs().smartScan(false);
        try (DedupEngine engine = DedupEngine.create(context.conclude())) {
            MergeDomain domain = engine.createDomain("d");
            byte[] page = new byte[PAGE];
            for (int g = 0; g < guests; g++) {
                Guest guest = engine.createGuest(domain, "g" + g, (long) pagesPerGuest * PAGE);
                for (int p = 0; p < pagesPerGuest; p++) {
                    long key = p % 2 == 0 ? (long) (g / 2) << 32 | p : 1L << 62 | (long) g << 32 | p;
                    new SplittableRandom(key).nextBytes(page);
                    guest.write((long) p * PAGE, page, 0, PAGE);
                }
            }
            engine.scanner().scanFullPass();
            engine.scanner().scanFullPass();
            EngineCounters c = engine.counters();
            long guestPages = (long) guests * pagesPerGuest;
            assertEquals(guestPages / 4, c.pagesShared(), "every twin pair merged: " + c);
            assertEquals(guestPages / 2, c.pagesUnshared(), "every unique page in the unstable index: " + c);
            long frames = poolBytes / PAGE;
            long budget = 16 * guestPages + 16 * frames;
            long fixed = guests * 256 * 32 + 64 * 1024;
            System.out.printf("metadata after merging: %d bytes, budget %d (+%d fixed)%n", engine.metadataBytes(),
                    budget, fixed);
            assertTrue(engine.metadataBytes() <= budget + fixed,
                    "metadata " + engine.metadataBytes() + " bytes for " + guestPages + " guest pages and " + frames
                            + " frames, budget " + budget);
        }
    }

    /**
     * The resident memory of the pool's own mapping ({@code Rss} of its entry in /proc/self/smaps): the
     * process's RssAnon also moves with the JVM's heap, which other tests in this JVM grow and shrink.
     */
    private static long residentKib(DedupEngine engine) throws IOException {
        long start = engine.pool().memory().address();
        boolean inside = false;
        for (String line : Files.readAllLines(Path.of("/proc/self/smaps"))) {
            if (line.matches("^[0-9a-f]+-[0-9a-f]+ .*")) {
                String[] range = line.substring(0, line.indexOf(' ')).split("-");
                inside = Long.parseUnsignedLong(range[0], 16) <= start && start < Long.parseUnsignedLong(range[1], 16);
            } else if (inside && line.startsWith("Rss:")) {
                return Long.parseLong(line.replaceAll("\\D", ""));
            }
        }
        throw new IOException("the pool's mapping at 0x" + Long.toHexString(start) + " is not in /proc/self/smaps");
    }
}
