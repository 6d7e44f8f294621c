package io.samepage.host;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.samepage.hashing.Pages;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.management.ManagementFactory;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/**
 * {@link PageDigestEstimator} against a naive model (a {@code HashMap} from content to the guest of each
 * page), on random guests drawing pages from a shared pool. A failure names the seed;
 * {@code -Dsamepage.seed=N} replays it.
 */
class PageDigestEstimatorTest {

    private static final long SEED = Long.getLong("samepage.seed", System.nanoTime());

    private static String note() {
        return " (replay with -Dsamepage.seed=" + SEED + ")";
    }

    @Test
    void countersPerGuestAndPairsMatchANaiveModel() {
        SplittableRandom random = new SplittableRandom(SEED);
        for (int round = 0; round < 30; round++) {
            int guests = 1 + random.nextInt(7);
            int pool = 1 + random.nextInt(3000);
            int mps = 2 + random.nextInt(random.nextBoolean() ? 4 : 300);
            boolean useZeroPages = random.nextBoolean();
            PageDigestEstimator estimator = new PageDigestEstimator(random.nextInt(20_000), random.nextLong());
            Map<Integer, List<Integer>> model = new HashMap<>();
            long[] zeros = new long[guests];
            long[] read = new long[guests];
            try (Arena arena = Arena.ofConfined()) {
                MemorySegment zeroPage = arena.allocate(Pages.PAGE_SIZE);
                for (int g = 0; g < guests; g++) {
                    estimator.beginGuest("g" + g);
                    int pages = random.nextInt(5000);
                    for (int p = 0; p < pages; p++) {
                        read[g]++;
                        if (random.nextInt(10) == 0) {
                            estimator.accept(zeroPage);
                            zeros[g]++;
                            continue;
                        }
                        int content = random.nextInt(pool);
                        estimator.add(content * 0x9E37_79B9_7F4A_7C15L, ~content, content);
                        model.computeIfAbsent(content, c -> new ArrayList<>()).add(g);
                    }
                }
            }
            PageDigestEstimator.Estimate e = estimator.estimate(mps, useZeroPages);
            String at = " in round " + round + note();
            long zero = 0;
            for (long z : zeros) {
                zero += z;
            }
            long sharing = 0;
            long[] merging = new long[guests];
            long[][] pairs = new long[guests][guests];
            for (List<Integer> holders : model.values()) {
                long n = holders.size();
                sharing += n - (n + mps - 1) / mps;
                for (int g : holders) {
                    merging[g] += n >= 2 ? 1 : 0;
                }
                Set<Integer> distinct = new HashSet<>(holders);
                for (int a : distinct) {
                    for (int b : distinct) {
                        pairs[a][b] += a < b ? 1 : 0;
                    }
                }
            }
            if (!useZeroPages) {
                sharing += zero - (zero + mps - 1) / mps;
            }
            assertEquals(sharing, e.pagesSharing(), "pages_sharing" + at);
            assertEquals(useZeroPages ? zero : 0, e.ksmZeroPages(), "ksm_zero_pages" + at);
            assertEquals(zero, e.zeroPages(), at);
            assertEquals(model.size() + (zero > 0 ? 1 : 0), e.distinctContents(), at);
            for (int g = 0; g < guests; g++) {
                PageDigestEstimator.GuestEstimate ge = e.guests().get(g);
                assertEquals(read[g], ge.pagesRead(), "pages read of guest " + g + at);
                assertEquals(zeros[g], ge.zeroPages(), at);
                assertEquals(merging[g] + (!useZeroPages && zero >= 2 ? zeros[g] : 0), ge.mergingPages(),
                        "merging_pages of guest " + g + at);
            }
            assertTrue(e.pairsComplete(), at);
            assertEquals(guests * (guests - 1) / 2, e.pairs().size(), at);
            for (PageDigestEstimator.Pair pair : e.pairs()) {
                assertEquals(pairs[pair.a()][pair.b()], pair.sharedContents(), pair + at);
            }
        }
    }

    @Test
    void identicalPagesThroughTheDigestAreOneContentAndDifferentOnesAreNot() {
        PageDigestEstimator estimator = new PageDigestEstimator(1024);
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment pages = arena.allocate(300L * Pages.PAGE_SIZE);
            for (int p = 0; p < 300; p++) {
                pages.set(ValueLayout.JAVA_INT, (long) p * Pages.PAGE_SIZE, p < 257 ? 42 : p);
            }
            estimator.beginGuest("only");
            estimator.accept(pages);
        }
        PageDigestEstimator.Estimate e = estimator.estimate(256, false);
        assertEquals(1 + 43, e.distinctContents(), "257 identical pages and 43 distinct ones");
        assertEquals(1, e.pagesShared());
        assertEquals(255, e.pagesSharing());
        assertEquals(1 + 43, e.pagesUnshared(), "the 257th copy stays alone under max_page_sharing=256");
        assertEquals(257, e.guests().get(0).mergingPages(), "counts the lone copy too, as documented");
    }

    @Test
    void allZeroGuestsWithAndWithoutUseZeroPages() {
        PageDigestEstimator estimator = new PageDigestEstimator(0);
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment pages = arena.allocate(1000L * Pages.PAGE_SIZE);
            estimator.beginGuest("a");
            estimator.accept(pages);
            estimator.beginGuest("b");
            estimator.accept(pages.asSlice(0, 24L * Pages.PAGE_SIZE));
        }
        PageDigestEstimator.Estimate on = estimator.estimate(256, true);
        assertEquals(1024, on.ksmZeroPages());
        assertEquals(1024, on.savedPages());
        assertEquals(0, on.pagesShared());
        assertEquals(0, on.pairs().get(0).sharedContents(), "zero pages are not placement-dependent");
        PageDigestEstimator.Estimate off = estimator.estimate(256, false);
        assertEquals(0, off.ksmZeroPages());
        assertEquals(4, off.pagesShared(), "1024 zero pages need 4 frames at 256 each");
        assertEquals(1020, off.savedPages());
        assertEquals(1000, off.guests().get(0).mergingPages());
        assertThrows(IllegalArgumentException.class, () -> estimator.estimate(1, false));
    }

    /**
     * Same pages, same sketch: each guest's sketch from the estimator is what {@link GuestSketch#addPage}
     * (a guest loaded from a file) makes of the same pages, values and page count, whatever the
     * estimator's random key; guests hold more distinct contents than a sketch keeps, and repeat and
     * share some, with zero pages among them.
     */
    @Test
    void eachGuestsSketchIsWhatTheFilePathMakesOfTheSamePages() {
        SplittableRandom random = new SplittableRandom(SEED);
        PageDigestEstimator one = new PageDigestEstimator(4000, random.nextLong());
        PageDigestEstimator other = new PageDigestEstimator(10, random.nextLong());
        List<GuestSketch> fromFiles = new ArrayList<>();
        try (Arena arena = Arena.ofConfined()) {
            for (int g = 0; g < 3; g++) {
                // Guest 0 gets at least 1,000 pages (about 750 distinct contents), so it holds more than
                // the sketch keeps, as the last assertion needs; 300 pages held under 256 in some seeds.
                int pages = (g == 0 ? 1000 : 300) + random.nextInt(1500);
                MemorySegment memory = arena.allocate((long) pages * Pages.PAGE_SIZE);
                GuestSketch file = new GuestSketch();
                for (int p = 0; p < pages; p++) {
                    int content = random.nextInt(2000);
                    if (content >= 100) {
                        memory.set(ValueLayout.JAVA_LONG, (long) p * Pages.PAGE_SIZE + 8 * (content % 512), content);
                    }
                    file.addPage(memory, (long) p * Pages.PAGE_SIZE);
                }
                fromFiles.add(file);
                for (PageDigestEstimator estimator : List.of(one, other)) {
                    estimator.beginGuest("g" + g);
                    estimator.accept(memory);
                }
            }
        }
        for (PageDigestEstimator estimator : List.of(one, other)) {
            PageDigestEstimator.Estimate e = estimator.estimate(256, false);
            for (int g = 0; g < 3; g++) {
                GuestSketch live = e.guests().get(g).sketch();
                assertArrayEquals(fromFiles.get(g).values(), live.values(), "guest " + g + note());
                assertEquals(fromFiles.get(g).pages(), live.pages(), "guest " + g + note());
                assertEquals(e.guests().get(g).pagesRead(), live.pages(), "guest " + g + note());
            }
        }
        assertEquals(GuestSketch.K, fromFiles.get(0).values().length, "more distinct contents than the sketch keeps" + note());
    }

    /** Without sketches (the policy loop's estimate) the counts are the same and no guest has a sketch. */
    @Test
    void withoutSketchesTheEstimateIsTheSameAndCarriesNone() {
        SplittableRandom random = new SplittableRandom(SEED);
        long seed = random.nextLong();
        PageDigestEstimator with = new PageDigestEstimator(2000, seed, true);
        PageDigestEstimator without = new PageDigestEstimator(2000, seed, false);
        try (Arena arena = Arena.ofConfined()) {
            for (int g = 0; g < 2; g++) {
                MemorySegment memory = arena.allocate(800L * Pages.PAGE_SIZE);
                for (int p = 0; p < 800; p++) {
                    int content = random.nextInt(600);
                    if (content >= 50) {
                        memory.set(ValueLayout.JAVA_LONG, (long) p * Pages.PAGE_SIZE, content);
                    }
                }
                for (PageDigestEstimator estimator : List.of(with, without)) {
                    estimator.beginGuest("g" + g);
                    estimator.accept(memory);
                }
            }
        }
        PageDigestEstimator.Estimate a = with.estimate(256, false);
        PageDigestEstimator.Estimate b = without.estimate(256, false);
        assertEquals(a.counters(), b.counters(), note());
        assertEquals(a.pairs(), b.pairs(), note());
        for (int g = 0; g < 2; g++) {
            assertEquals(a.guests().get(g).mergingPages(), b.guests().get(g).mergingPages(), note());
            assertEquals(null, b.guests().get(g).sketch(), note());
        }
    }

    /** The per-page path (zero test, digest, sketch hash, table, sketch) allocates nothing once warm. */
    @Test
    void acceptingPagesAllocatesNothingPerPage() {
        var threads = (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();
        PageDigestEstimator estimator = new PageDigestEstimator(1024);
        estimator.beginGuest("only");
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment region = arena.allocate(64L * Pages.PAGE_SIZE);
            SplittableRandom random = new SplittableRandom(SEED);
            for (long off = 0; off < region.byteSize(); off += Long.BYTES) {
                region.set(ValueLayout.JAVA_LONG, off, off % (3 * Pages.PAGE_SIZE) == 0 ? 0 : random.nextLong());
            }
            region.asSlice(0, Pages.PAGE_SIZE).fill((byte) 0);
            for (int r = 0; r < 2_000; r++) {
                estimator.accept(region);
            }
            long before = threads.getCurrentThreadAllocatedBytes();
            for (int r = 0; r < 2_000; r++) {
                estimator.accept(region);
            }
            long allocated = threads.getCurrentThreadAllocatedBytes() - before;
            long pages = 2_000L * 64;
            assertTrue(allocated < pages / 16, "allocated " + allocated + " bytes for " + pages + " pages" + note());
        }
    }
}
