package io.samepage.core;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import io.samepage.hashing.HashAlgorithm;
import io.samepage.hashing.PageHasher;
import io.samepage.hashing.Pages;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/**
 * The fast hash only filters. With a hash that gives every page the same value (so every lookup finds
 * every candidate, and every page looks like the zero page), or one that returns values unrelated to
 * the content, unequal pages never merge, and equal pages still merge into frames that read back
 * exactly what was written.
 */
class CollidingHashTest {

    private static final int PAGE = Pages.PAGE_SIZE;

    /** Values that ignore the content: drawn from three, so they often match, seeded so a run replays. */
    private static final class RandomHasher implements PageHasher {
        private final SplittableRandom random;

        RandomHasher(long seed) {
            random = new SplittableRandom(seed);
        }

        @Override
        public long hash(MemorySegment memory, long offset) {
            Pages.checkPage(memory, offset);
            return random.nextInt(3);
        }

        @Override
        public HashAlgorithm algorithm() {
            return HashAlgorithm.defaultAlgorithm();
        }

        @Override
        public long seed() {
            return 0;
        }
    }

    /** The guests' contents, and which page holds which. */
    private static final class Layout {
        final DedupEngine engine;
        final List<Guest> guests = new ArrayList<>();
        final Map<Guest, byte[]> model = new HashMap<>();

        Layout(DedupEngine engine) {
            this.engine = engine;
        }

        Guest guest(MergeDomain domain, String name, byte[]... pages) {
            Guest guest = engine.createGuest(domain, name, (long) pages.length * PAGE);
            byte[] bytes = new byte[pages.length * PAGE];
            for (int p = 0; p < pages.length; p++) {
                System.arraycopy(pages[p], 0, bytes, p * PAGE, PAGE);
            }
            guest.write(0, bytes, 0, bytes.length);
            guests.add(guest);
            model.put(guest, bytes);
            return guest;
        }

        void write(Guest guest, int page, byte[] content) {
            guest.write((long) page * PAGE, content, 0, PAGE);
            System.arraycopy(content, 0, model.get(guest), page * PAGE, PAGE);
        }

        byte[] page(Guest guest, int page) {
            return Arrays.copyOfRange(model.get(guest), page * PAGE, (page + 1) * PAGE);
        }

        /** Reads every guest back, and checks that pages sharing a frame hold equal bytes in the model. */
        void assertReadsAndSharing(String where) {
            Map<Integer, byte[]> frameContent = new HashMap<>();
            for (Guest guest : guests) {
                byte[] read = new byte[(int) guest.sizeBytes()];
                guest.read(0, read, 0, read.length);
                int at = Arrays.mismatch(read, model.get(guest));
                if (at >= 0) {
                    fail(where + ": " + guest.name() + " reads " + read[at] + " at " + at + ", last written "
                            + model.get(guest)[at]);
                }
                for (int p = 0; p < guest.pageCount(); p++) {
                    if (!guest.isMerged(p) || guest.frameAt(p) == guest.domain().zeroFrame()) {
                        continue;
                    }
                    byte[] previous = frameContent.putIfAbsent(guest.frameAt(p), page(guest, p));
                    assertTrue(previous == null || Arrays.equals(previous, page(guest, p)),
                            where + ": " + guest.name() + " page " + p + " shares frame " + guest.frameAt(p)
                                    + " with a page of other content");
                }
            }
            EngineInvariants.assertConsistent(engine, null, where);
        }
    }

    private static DedupEngine engine(PageHasher hasher, boolean useZeroPages) {
        EngineContext context = new EngineContext().poolBytes(8L << 20).customHasher(hasher);
        context.knobs().useZeroPages(useZeroPages).smartScan(false);
        return DedupEngine.create(context.conclude());
    }

    private static byte[] random(long seed) {
        byte[] bytes = new byte[PAGE];
        new SplittableRandom(seed).nextBytes(bytes);
        return bytes;
    }

    private static byte[] differingAt(byte[] content, int offset) {
        byte[] bytes = content.clone();
        bytes[offset] ^= 0x40;
        return bytes;
    }

    private static void scan(DedupEngine engine, int fullScans) {
        for (int i = 0; i < fullScans; i++) {
            engine.scanner().scanFullPass();
        }
    }

    @Test
    void unequalPagesNeverMergeAndEqualPagesStillDoWhenEveryPageHashesAlike() {
        for (boolean useZeroPages : new boolean[] {false, true}) {
            try (DedupEngine engine = engine(new WeakHashers.Constant(), useZeroPages)) {
                byte[] x = random(1);
                byte[] y = random(2);
                byte[] z = random(3);
                Layout layout = new Layout(engine);
                MergeDomain domain = engine.createDomain("tenant");
                // Each content's first two copies are neighbours in scan order, because the unstable index
                // keeps one candidate per hash; once a content is stable every later copy finds it there.
                Guest a = layout.guest(domain, "a", x, x, differingAt(x, 0), y, y, differingAt(y, PAGE - 1),
                        differingAt(x, PAGE / 2), random(10));
                Guest b = layout.guest(domain, "b", differingAt(z, 7), y, random(11), x, z, z, differingAt(z, 8), x);
                Guest other = layout.guest(engine.createDomain("other"), "other", x, x, y);
                scan(engine, 3);
                String where = "constant hash, use_zero_pages " + useZeroPages;
                layout.assertReadsAndSharing(where);
                boolean[] aMerged = {true, true, false, true, true, false, false, false};
                boolean[] bMerged = {false, true, false, true, true, true, false, true};
                for (int p = 0; p < 8; p++) {
                    assertEquals(aMerged[p], a.isMerged(p), where + ": a page " + p);
                    assertEquals(bMerged[p], b.isMerged(p), where + ": b page " + p);
                }
                assertEquals(3, domain.pagesShared(), where + ": one frame each for x, y and z");
                assertEquals(a.frameAt(0), b.frameAt(7), where + ": every x maps x's frame");
                assertTrue(other.isMerged(0) && other.isMerged(1) && !other.isMerged(2),
                        where + ": the other domain merges its own x pair and nothing else");

                layout.write(a, 7, y);
                layout.write(b, 0, z);
                layout.write(a, 1, differingAt(x, 100));
                scan(engine, 2);
                where += ", after rewrites";
                layout.assertReadsAndSharing(where);
                assertEquals(a.frameAt(3), a.frameAt(7), where + ": a page rewritten to y merges with y's frame");
                assertEquals(b.frameAt(4), b.frameAt(0), where + ": b page rewritten to z merges with z's frame");
                assertFalse(a.isMerged(1), where + ": a near-duplicate of x merges with nothing");
            }
        }
    }

    /**
     * One content, one place: a content whose key the hash chain holds for other content has its frames in
     * the collision tree, and once that other content leaves the chain, its next frame went to the chain,
     * which no longer held the key: the content had frames on both sides, and a lookup of it looked at the
     * chain's, then at the tree's. Every page hashes alike; at {@code max_page_sharing} 2 each frame is full
     * once filed, so a second pair of the colliding content makes a second frame. The engine's invariants
     * check that every content's frames are on one side; then a frame given room is filled before a new one.
     */
    @Test
    void aCollidingContentKeepsItsFramesInOnePlaceWhenTheChainedContentOfItsKeyLeaves() {
        EngineContext context = new EngineContext().poolBytes(8L << 20).customHasher(new WeakHashers.Constant());
        context.knobs().useZeroPages(false).smartScan(false).maxPageSharing(2);
        try (DedupEngine engine = DedupEngine.create(context.conclude())) {
            byte[] chained = random(1);
            byte[] colliding = random(2);
            Layout layout = new Layout(engine);
            MergeDomain domain = engine.createDomain("tenant");
            Guest first = layout.guest(domain, "first", chained, chained, colliding, colliding);
            scan(engine, 2);
            assertEquals(2, domain.pagesShared(), "one frame chained, one colliding with it");
            layout.assertReadsAndSharing("both contents merged");
            layout.write(first, 0, random(3));
            layout.write(first, 1, random(4));
            assertEquals(1, domain.pagesShared(), "the chained content left");
            layout.assertReadsAndSharing("after the chained content left");
            Guest second = layout.guest(domain, "second", colliding, colliding);
            scan(engine, 2);
            assertEquals(2, domain.pagesShared(), "a second frame of the colliding content, the first being full");
            assertTrue(second.isMerged(0) && second.frameAt(0) == second.frameAt(1), "the second pair merged");
            layout.assertReadsAndSharing("after a second frame of the colliding content");
            layout.write(first, 2, random(5));      // the first frame has room again
            Guest third = layout.guest(domain, "third", colliding);
            scan(engine, 2);
            assertEquals(first.frameAt(3), third.frameAt(0), "the page went into the frame with room");
            assertEquals(2, domain.pagesShared(), "no third frame");
            layout.assertReadsAndSharing("after the frame with room was filled");
        }
    }

    @Test
    void onlyAllZeroPagesMapTheZeroFrameWhenEveryPageHashesLikeTheZeroPage() {
        try (DedupEngine engine = engine(new WeakHashers.Constant(), true)) {
            byte[] zero = new byte[PAGE];
            Layout layout = new Layout(engine);
            MergeDomain domain = engine.createDomain("tenant");
            Guest guest = layout.guest(domain, "almost-zero", zero, differingAt(zero, 0), differingAt(zero, PAGE - 1),
                    differingAt(zero, PAGE / 2), zero, random(4));
            scan(engine, 3);
            layout.assertReadsAndSharing("zero pages, constant hash");
            assertEquals(2, guest.counters().zeroPages(), "only the two all-zero pages map the zero frame");
            for (int p : new int[] {1, 2, 3, 5}) {
                assertFalse(guest.isMerged(p), "page " + p + " is not all zeros and has no twin");
                assertTrue(guest.frameAt(p) != domain.zeroFrame(), "page " + p + " keeps its own frame");
            }
            engine.knobs().run(ScanKnobs.RUN_UNMERGE);
            engine.scanner().doWork();
            layout.assertReadsAndSharing("zero pages after run=2");
            assertEquals(0, guest.counters().zeroPages());
        }
    }

    /**
     * A page found all zeros when hashed is merged at its next visit without being read again, but only
     * if nothing wrote it in between: with every page hashing alike, a write of non-zero bytes leaves
     * the hash unchanged, so only the dirty bit stops the old check from standing.
     */
    @Test
    void aPageWrittenAfterItWasFoundZeroIsCheckedAgainBeforeItMapsTheZeroFrame() {
        try (DedupEngine engine = engine(new WeakHashers.Constant(), true)) {
            MergeDomain domain = engine.createDomain("tenant");
            Guest guest = engine.createGuest(domain, "g", 2L * PAGE);
            guest.write(0, new byte[PAGE], 0, PAGE);
            guest.write(PAGE, new byte[PAGE], 0, PAGE);
            engine.scanner().scanFullPass();
            assertEquals(0, guest.counters().zeroPages(), "the first visit only hashes");
            byte[] one = {1};
            guest.write(PAGE + 100, one, 0, 1);
            engine.scanner().scanFullPass();
            assertEquals(1, guest.counters().zeroPages(), "only the page nobody wrote maps the zero frame");
            assertFalse(guest.isMerged(1), "the written page keeps its own frame");
            assertEquals(1, guest.readByte(PAGE + 100));
            assertEquals(0, guest.readByte(100));
        }
    }

    @Test
    void contentIndependentHashesNeverMergeUnequalPagesAndStillMergeEqualOnes() {
        for (long seed = 1; seed <= 4; seed++) {
            try (DedupEngine engine = engine(new RandomHasher(seed), seed % 2 == 0)) {
                SplittableRandom rnd = new SplittableRandom(seed);
                byte[] x = random(1);
                byte[] y = random(2);
                byte[][] contents = {x, y, differingAt(x, 0), differingAt(y, PAGE - 1), new byte[PAGE],
                    differingAt(new byte[PAGE], PAGE / 2)};
                Layout layout = new Layout(engine);
                for (int d = 0; d < 2; d++) {
                    MergeDomain domain = engine.createDomain("domain-" + d);
                    for (int g = 0; g < 2; g++) {
                        byte[][] pages = new byte[8][];
                        for (int p = 0; p < pages.length; p++) {
                            pages[p] = contents[rnd.nextInt(contents.length)];
                        }
                        layout.guest(domain, "g" + d + g, pages);
                    }
                }
                for (int step = 0; step < 300; step++) {
                    String where = "random hash, seed " + seed + ", step " + step;
                    if (rnd.nextInt(4) == 0) {
                        Guest guest = layout.guests.get(rnd.nextInt(layout.guests.size()));
                        layout.write(guest, rnd.nextInt(guest.pageCount()), contents[rnd.nextInt(contents.length)]);
                    } else {
                        engine.scanner().scanBatch(1 + rnd.nextInt(16));
                    }
                    if (step % 10 == 0) {
                        layout.assertReadsAndSharing(where);
                    }
                }
                scan(engine, 40);
                layout.assertReadsAndSharing("random hash, seed " + seed + ", end");
                long merged = 0;
                for (Guest guest : layout.guests) {
                    merged += guest.counters().mergingPages() + guest.counters().zeroPages();
                }
                assertTrue(merged > 0,
                        "random hash, seed " + seed + ": equal pages still merge when hashes happen to match");
            }
        }
    }
}
