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
     * The same as {@link #aContentWhoseFramesAreAllFullCostsFewStepsPerLookup} for a content whose key another
     * content holds (every page hashes alike): its frames sit in the collision tree, where a lookup that found
     * every frame full looked at each of them, O(frames) per lookup, and compared each. One content is
     * chained, {@code OTHERS} more collide with it, and one content of {@code pages} pages makes a frame per
     * two at {@code max_page_sharing} 2. Counted in frames looked at and full compares in the merging full
     * scan, where every page is looked up once, not time: at d5fca14, 993 frames and 1,503 compares a page.
     */
    @Test
    void aCollidingContentWhoseFramesAreAllFullCostsFewStepsPerLookup() {
        int pages = 4096;
        try (DedupEngine engine = DedupEngine.create(collidingAtLeastSharing(pages))) {
            MergeDomain domain = engine.createDomain("d");
            Guest guest = collidingGuest(engine, domain, pages, 5);
            int all = guest.pageCount();
            engine.scanner().scanFullPass();        // the first visit: every page waits for the next
            long steps = domain.stableTakeSteps();
            long compares = engine.pagesCompared();
            engine.scanner().scanFullPass();
            assertEquals(all / 2, engine.counters().pagesShared(), "a frame per two pages");
            assertEquals(all / 2, engine.counters().pagesSharing(), "every page merged");
            double perPage = (domain.stableTakeSteps() - steps) / (double) all;
            assertTrue(perPage < 4, perPage + " frames looked at per page looked up, among up to " + pages / 2
                    + " full frames of one colliding content");
            double comparesPerPage = (engine.pagesCompared() - compares) / (double) all;
            assertTrue(comparesPerPage <= collidingCompareBound(OTHERS + 2), comparesPerPage + " full compares per page "
                    + "among " + (OTHERS + 2) + " colliding contents; O(log n) allows " + collidingCompareBound(OTHERS + 2));
            EngineInvariants.assertConsistent(engine, engine.context().newScannerHasher(), "after merging");
        }
    }

    /**
     * The same as {@link #framesGivenRoomAmongFullOnesAreFoundAgainInFewSteps} for a colliding content: half
     * its frames lose a page (written with the same bytes), and the rewritten pages go back into them, each
     * found in a few steps, where the collision tree's lookups walked the content's full frames to reach one
     * (at d5fca14, 1,024 frames looked at per re-merge).
     */
    @Test
    void collidingFramesGivenRoomAmongFullOnesAreFoundAgainInFewSteps() {
        int pages = 4096;
        try (DedupEngine engine = DedupEngine.create(collidingAtLeastSharing(pages))) {
            MergeDomain domain = engine.createDomain("d");
            Guest guest = collidingGuest(engine, domain, pages, 6);
            int all = guest.pageCount();
            engine.scanner().scanUntilStable(Scanner.DEFAULT_MAX_FULL_SCANS_TO_SETTLE);
            assertEquals(all / 2, engine.counters().pagesShared(), "a frame per two pages");
            byte[] same = new byte[PAGE];
            guest.read((long) (all - 1) * PAGE, same, 0, PAGE);
            java.util.Map<Integer, Integer> firstPageOf = new java.util.LinkedHashMap<>();
            for (int p = all - pages; p < all; p++) {
                firstPageOf.putIfAbsent(guest.frameAt(p), p);
            }
            assertEquals(pages / 2, firstPageOf.size(), "a frame per two pages of the colliding content");
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
            assertEquals(all / 2, engine.counters().pagesShared(), "each into a frame with room, none into a new one");
            double perMerge = (domain.stableTakeSteps() - steps) / (double) remerged;
            assertTrue(perMerge < 4, perMerge + " frames looked at per re-merge among " + pages / 2 + " colliding frames");
            EngineInvariants.assertConsistent(engine, engine.context().newScannerHasher(), "after merging again");
        }
    }

    /**
     * The unstable index's collision tree with one content of many pages at {@code max_page_sharing} 2: every
     * pair that merges leaves its candidate marked removed in the tree, and the content's next candidate is
     * filed beside them. A lookup of that content walked every removed candidate of equal bytes to reach a
     * live one, or none: O(pages of the content) full compares a page, quadratic a full scan (at 8b8156e,
     * 1,022 compares a page here). One unique page comes first, so it holds the key's table slot all scan and
     * every other page goes to the tree; {@code OTHERS} distinct contents collide too. (Distinct contents
     * alone were already O(log n): {@link #pagesThatAllHashAlikeCostLogarithmicComparesPerLookup}.) Counted in
     * full compares in the merging full scan, where every page is looked up once, not time.
     */
    @Test
    void manyCopiesOfOneCollidingContentCostLogarithmicComparesInTheUnstableIndex() {
        int pages = 4096;
        try (DedupEngine engine = DedupEngine.create(collidingAtLeastSharing(pages))) {
            MergeDomain domain = engine.createDomain("d");
            SplittableRandom random = new SplittableRandom(8);
            int all = 1 + OTHERS + pages;
            Guest guest = engine.createGuest(domain, "g", (long) all * PAGE);
            byte[] content = new byte[PAGE];
            for (int p = 0; p < all; p++) {
                if (p <= 1 + OTHERS) {
                    random.nextBytes(content);      // the unique first page, the others, then one content
                }
                guest.write((long) p * PAGE, content, 0, PAGE);
            }
            engine.scanner().scanFullPass();        // the first visit: every page waits for the next
            long compares = engine.pagesCompared();
            engine.scanner().scanFullPass();
            assertEquals(pages / 2, engine.counters().pagesShared(), "a frame per two pages of the content");
            assertEquals(pages / 2, engine.counters().pagesSharing(), "every page of the content merged");
            double comparesPerPage = (engine.pagesCompared() - compares) / (double) all;
            assertTrue(comparesPerPage <= collidingCompareBound(all), comparesPerPage + " full compares per page "
                    + "among " + pages + " pages of one colliding content; O(log n) allows " + collidingCompareBound(all));
            EngineInvariants.assertConsistent(engine, engine.context().newScannerHasher(), "after merging");
        }
    }

    /** Contents that collide with the colliding tests' big content, besides the chained one. */
    private static final int OTHERS = 63;

    /** Full compares per page a lookup and a filing among {@code contents} colliding contents may make. */
    private static double collidingCompareBound(int contents) {
        return 8 * (64 - Long.numberOfLeadingZeros(contents));
    }

    /** An engine whose every page hashes alike, at the least {@code max_page_sharing} (2). */
    private static EngineContext collidingAtLeastSharing(int pages) {
        EngineContext context = new EngineContext().customHasher(new WeakHashers.Constant())
                .poolBytes((long) (pages + 4096) * PAGE).hashSeed(7);
        context.knobs().maxPageSharing(2);
        return context.conclude();
    }

    /**
     * A guest whose pages all hash alike: two of one content (chained first, as the scan meets them first),
     * two of each of {@link #OTHERS} more (the collision tree), then {@code pages} of one content.
     */
    private static Guest collidingGuest(DedupEngine engine, MergeDomain domain, int pages, long seed) {
        SplittableRandom random = new SplittableRandom(seed);
        int all = 2 * (OTHERS + 1) + pages;
        Guest guest = engine.createGuest(domain, "g", (long) all * PAGE);
        byte[] content = new byte[PAGE];
        for (int p = 0; p < all; p++) {
            if (p < 2 * (OTHERS + 1) ? p % 2 == 0 : p == 2 * (OTHERS + 1)) {
                random.nextBytes(content);
            }
            guest.write((long) p * PAGE, content, 0, PAGE);
        }
        return guest;
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
