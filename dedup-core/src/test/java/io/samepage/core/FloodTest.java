package io.samepage.core;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.samepage.hashing.CrcCollisions;
import io.samepage.hashing.HashAlgorithm;
import io.samepage.hashing.PageHasher;
import io.samepage.hashing.Pages;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/**
 * Hash flooding: n distinct pages under one key cost O(log n) full compares per lookup (the indexes
 * order colliding contents by their bytes), never O(n). Counted in compares, not time. On ad2fa2a the
 * same content cost a compare with every earlier colliding page: about n^2/2 per full scan.
 */
class FloodTest {

    private static final int PAGE = Pages.PAGE_SIZE;
    private static final int PAGES = 4096;
    private static final int TWINS = 256;
    private static final int SCANS = 3;

    /** Compares a full scan may make per page: a chain compare plus a find and an insert in a treap. */
    private static long bound(int pages) {
        return (long) SCANS * pages * 4 * (64 - Long.numberOfLeadingZeros(pages));
    }

    private static long scanAndCount(EngineContext context, byte[][] contents) {
        try (DedupEngine engine = DedupEngine.create(context.poolBytes(64L << 20).conclude())) {
            Guest guest = engine.createGuest(engine.createDomain("tenant"), "flood", (long) contents.length * PAGE);
            for (int p = 0; p < contents.length; p++) {
                guest.write((long) p * PAGE, contents[p], 0, PAGE);
            }
            long before = engine.pagesCompared();
            for (int i = 0; i < SCANS; i++) {
                engine.scanner().scanFullPass();
            }
            long compares = engine.pagesCompared() - before;
            assertEquals(TWINS, engine.counters().pagesSharing(), "every twin merged, colliding or not");
            byte[] read = new byte[PAGE];
            for (int p = 0; p < contents.length; p += 97) {
                guest.read((long) p * PAGE, read, 0, PAGE);
                assertArrayEquals(contents[p], read, "page " + p);
            }
            EngineInvariants.assertConsistent(engine, null, "after the flood");
            return compares;
        }
    }

    /** {@code PAGES} distinct pages from {@code distinct}, then {@code TWINS} copies of some of them. */
    private static byte[][] withTwins(byte[][] distinct) {
        byte[][] contents = new byte[distinct.length + TWINS][];
        System.arraycopy(distinct, 0, contents, 0, distinct.length);
        for (int t = 0; t < TWINS; t++) {
            contents[distinct.length + t] = distinct[t * 13 % distinct.length];
        }
        return contents;
    }

    private static byte[][] randomPages(long seed) {
        SplittableRandom random = new SplittableRandom(seed);
        byte[][] pages = new byte[PAGES][PAGE];
        for (byte[] page : pages) {
            random.nextBytes(page);
        }
        return pages;
    }

    private static byte[][] craftedPages() {
        CrcCollisions crafted = new CrcCollisions();
        byte[] base = new byte[PAGE];
        new SplittableRandom(7).nextBytes(base);
        byte[][] pages = new byte[PAGES][];
        for (int i = 0; i < PAGES; i++) {
            pages[i] = crafted.page(base, i + 1);
        }
        return pages;
    }

    @Test
    void pagesThatAllHashAlikeCostLogarithmicComparesPerLookup() {
        PageHasher constant = new WeakHashers.Constant();
        long compares = scanAndCount(new EngineContext().customHasher(constant), withTwins(randomPages(3)));
        assertTrue(compares <= bound(PAGES + TWINS), compares + " compares for " + (PAGES + TWINS)
                + " pages under one key in " + SCANS + " scans; O(log n) per lookup allows " + bound(PAGES + TWINS));
    }

    @Test
    void pagesCraftedAgainstCrc32cCostLogarithmicComparesUnderCrc32c() {
        byte[][] crafted = craftedPages();
        assertEquals(CrcCollisions.crc(crafted[0], 0), CrcCollisions.crc(crafted[1], 0), "the pages collide under CRC32C");
        EngineContext context = new EngineContext().hashAlgorithm(HashAlgorithm.CRC32C).hashSeed(5);
        long compares = scanAndCount(context, withTwins(crafted));
        assertTrue(compares <= bound(PAGES + TWINS), compares + " compares; O(log n) per lookup allows "
                + bound(PAGES + TWINS));
    }
    /**
     * A guest of one content has a duplicate frame per 256 pages, chained newest first; breaking sharing
     * of the oldest half (writing their pages again with the same bytes) made every re-merge walk past
     * every full duplicate before a frame with room: a lookup O(duplicates), a scan quadratic in the
     * guest's pages (the audit measured 16x the per-page cost of one frame at 2,048 duplicates). Counted
     * in chain steps per re-merge, which do not depend on the machine.
     */
    @Test
    void remergingIntoOldDuplicatesDoesNotWalkPastEveryFullOne() {
        int pages = 64 * 256;
        byte[] same = new byte[PAGE];
        new java.util.SplittableRandom(1).nextBytes(same);
        EngineContext context = new EngineContext().poolBytes((long) (pages + 4096) * PAGE).hashSeed(7);
        try (DedupEngine engine = DedupEngine.create(context.conclude())) {
            MergeDomain domain = engine.createDomain("d");
            Guest guest = engine.createGuest(domain, "g", (long) pages * PAGE);
            for (int p = 0; p < pages; p++) {
                guest.write((long) p * PAGE, same, 0, PAGE);
            }
            engine.scanner().scanUntilStable(Scanner.DEFAULT_MAX_FULL_SCANS_TO_SETTLE);
            java.util.Map<Integer, java.util.List<Integer>> byFrame = new java.util.LinkedHashMap<>();
            for (int p = 0; p < pages; p++) {
                byFrame.computeIfAbsent(guest.frameAt(p), f -> new java.util.ArrayList<>()).add(p);
            }
            java.util.List<java.util.List<Integer>> frames = new java.util.ArrayList<>(byFrame.values());
            assertEquals(64, frames.size(), "a duplicate per 256 pages");
            long rewritten = 0;
            for (java.util.List<Integer> frame : frames.subList(0, frames.size() / 2)) {   // the oldest half
                for (int page : frame.subList(1, frame.size())) {
                    guest.write((long) page * PAGE, same, 0, PAGE);
                    rewritten++;
                }
            }
            long steps = domain.stableTakeSteps();
            long merges = engine.scanner().merges();
            engine.scanner().scanFullPass();
            long remerged = engine.scanner().merges() - merges;
            assertEquals(rewritten, remerged, "every rewritten page merged again");
            double perMerge = (domain.stableTakeSteps() - steps) / (double) remerged;
            assertTrue(perMerge < 4, perMerge + " chain steps per re-merge among 64 duplicates");
        }
    }

    /**
     * At the least {@code max_page_sharing} (2) every frame is full once filed, so a guest of one content
     * makes a duplicate frame per two pages, and every lookup of that content meets only full frames. Such
     * a lookup must not look at each of them: on 23715f2 it walked every one, about a quarter of the
     * guest's pages per page, under the domain's lock. Counted in frames looked at, not time.
     */
    @Test
    void aContentWhoseFramesAreAllFullCostsFewStepsPerLookup() {
        int pages = 8192;
        byte[] same = new byte[PAGE];
        new SplittableRandom(2).nextBytes(same);
        EngineContext context = new EngineContext().poolBytes((long) (pages + 4096) * PAGE).hashSeed(7);
        context.knobs().maxPageSharing(2);
        try (DedupEngine engine = DedupEngine.create(context.conclude())) {
            MergeDomain domain = engine.createDomain("d");
            Guest guest = engine.createGuest(domain, "g", (long) pages * PAGE);
            for (int p = 0; p < pages; p++) {
                guest.write((long) p * PAGE, same, 0, PAGE);
            }
            int scans = engine.scanner().scanUntilStable(Scanner.DEFAULT_MAX_FULL_SCANS_TO_SETTLE);
            assertEquals(pages / 2, engine.counters().pagesShared(), "a frame per two pages");
            assertEquals(pages / 2, engine.counters().pagesSharing(), "every page merged");
            double perPage = domain.stableTakeSteps() / ((double) pages * scans);
            assertTrue(perPage < 4, perPage + " frames looked at per page visited, among up to " + pages / 2
                    + " full frames of one content, in " + scans + " full scans");
            EngineInvariants.assertConsistent(engine, engine.context().newScannerHasher(), "after merging");
        }
    }

    /**
     * A page that leaves a full frame gives that frame room, wherever it stands among its content's full
     * frames: the page's bytes, merged again, go back into such a frame (no new frame), found in a few steps.
     * Half the frames of one content at {@code max_page_sharing} 2 lose a page (written with the same bytes).
     */
    @Test
    void framesGivenRoomAmongFullOnesAreFoundAgainInFewSteps() {
        int pages = 8192;
        byte[] same = new byte[PAGE];
        new SplittableRandom(3).nextBytes(same);
        EngineContext context = new EngineContext().poolBytes((long) (pages + 4096) * PAGE).hashSeed(7);
        context.knobs().maxPageSharing(2);
        try (DedupEngine engine = DedupEngine.create(context.conclude())) {
            MergeDomain domain = engine.createDomain("d");
            Guest guest = engine.createGuest(domain, "g", (long) pages * PAGE);
            for (int p = 0; p < pages; p++) {
                guest.write((long) p * PAGE, same, 0, PAGE);
            }
            engine.scanner().scanUntilStable(Scanner.DEFAULT_MAX_FULL_SCANS_TO_SETTLE);
            java.util.Map<Integer, Integer> firstPageOf = new java.util.LinkedHashMap<>();
            for (int p = 0; p < pages; p++) {
                firstPageOf.putIfAbsent(guest.frameAt(p), p);
            }
            assertEquals(pages / 2, firstPageOf.size(), "a frame per two pages");
            int rewritten = 0;
            for (int page : firstPageOf.values()) {
                if (rewritten++ % 2 == 0) {
                    guest.write((long) page * PAGE, same, 0, PAGE);      // breaks sharing: the frame has room
                }
            }
            EngineInvariants.assertConsistent(engine, engine.context().newScannerHasher(), "after the writes");
            long steps = domain.stableTakeSteps();
            long merges = engine.scanner().merges();
            engine.scanner().scanUntilStable(Scanner.DEFAULT_MAX_FULL_SCANS_TO_SETTLE);
            long remerged = engine.scanner().merges() - merges;
            assertEquals(pages / 4, remerged, "every rewritten page merged again");
            assertEquals(pages / 2, engine.counters().pagesShared(), "each into a frame with room, none into a new one");
            assertEquals(pages / 2, engine.counters().pagesSharing(), "every page merged");
            double perMerge = (domain.stableTakeSteps() - steps) / (double) remerged;
            assertTrue(perMerge < 4, perMerge + " frames looked at per re-merge among " + pages / 2 + " frames");
            EngineInvariants.assertConsistent(engine, engine.context().newScannerHasher(), "after merging again");
        }
    }

    /**
     * Frames that a destroyed guest shared with others get room: the next guest of that content fills them
     * before it starts new ones. Guests of one page each, at {@code max_page_sharing} 2, pair up two by two.
     */
    @Test
    void framesADestroyedGuestSharedAreFilledAgainBeforeNewOnes() {
        int guests = 2048;
        byte[] same = new byte[PAGE];
        new SplittableRandom(4).nextBytes(same);
        EngineContext context = new EngineContext().poolBytes((long) (2 * guests + 4096) * PAGE).hashSeed(7);
        context.knobs().maxPageSharing(2);
        try (DedupEngine engine = DedupEngine.create(context.conclude())) {
            MergeDomain domain = engine.createDomain("d");
            java.util.List<Guest> first = new java.util.ArrayList<>();
            for (int g = 0; g < guests; g++) {
                Guest guest = engine.createGuest(domain, "g" + g, PAGE);
                guest.write(0, same, 0, PAGE);
                first.add(guest);
            }
            engine.scanner().scanUntilStable(Scanner.DEFAULT_MAX_FULL_SCANS_TO_SETTLE);
            assertEquals(guests / 2, engine.counters().pagesShared(), "a frame per two guests");
            java.util.Set<Integer> halved = new java.util.HashSet<>();
            for (Guest guest : first) {
                if (halved.add(guest.frameAt(0))) {
                    guest.destroy();            // one of each frame's two guests: every frame has room
                }
            }
            EngineInvariants.assertConsistent(engine, engine.context().newScannerHasher(), "after the destroys");
            long steps = domain.stableTakeSteps();
            for (int g = 0; g < guests / 2; g++) {
                engine.createGuest(domain, "h" + g, PAGE).write(0, same, 0, PAGE);
            }
            engine.scanner().scanUntilStable(Scanner.DEFAULT_MAX_FULL_SCANS_TO_SETTLE);
            assertEquals(guests / 2, engine.counters().pagesShared(), "the new guests filled the frames with room");
            assertEquals(guests / 2, engine.counters().pagesSharing(), "every page merged");
            double perMerge = (domain.stableTakeSteps() - steps) / (guests / 2.0);
            assertTrue(perMerge < 4, perMerge + " frames looked at per merge among " + guests / 2 + " frames");
            EngineInvariants.assertConsistent(engine, engine.context().newScannerHasher(), "after the new guests");
        }
    }
}
