package io.samepage.host;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/**
 * {@link GuestSketch} against exact counts. Contents are drawn from numbered pools so the exact answer
 * is known: guest A holds contents [0, a), guest B holds [a - shared, a - shared + b), each page
 * content possibly repeated. Seeds are fixed, so a failure reproduces.
 */
class GuestSketchTest {

    private static final int PAGE = 4096;

    @Test
    void smallGuestsAreCountedExactly() {
        GuestSketch a = sketch(0, 100, 3);
        GuestSketch b = sketch(60, 100, 2);
        assertEquals(100.0, a.distinctPages());
        assertEquals(300, a.pages());
        assertEquals(40.0, GuestSketch.sharedPages(a, b), 1e-9, "contents 60..99 are in both");
    }

    @Test
    void zeroPagesAreCountedButNotSketched() {
        GuestSketch s = new GuestSketch();
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment page = arena.allocate(PAGE);
            s.addPage(page, 0);
            s.addPage(page, 0);
        }
        assertEquals(2, s.pages());
        assertEquals(0, s.values().length);
    }

    /** Large guests, over many seeds: the estimates stay within a bound that KMV with k=256 gives. */
    @Test
    void largeGuestsAreEstimatedWithinTenPercentMostOfTheTime() {
        int within = 0;
        int runs = 20;
        for (int seed = 0; seed < runs; seed++) {
            int sharedExact = 20_000;
            GuestSketch a = hashes(0, 50_000, seed);
            GuestSketch b = hashes(50_000 - sharedExact, 40_000, seed);
            double shared = GuestSketch.sharedPages(a, b);
            assertTrue(Math.abs(a.distinctPages() - 50_000) / 50_000 < 0.25, "distinct " + a.distinctPages());
            if (Math.abs(shared - sharedExact) / sharedExact <= 0.10) {
                within++;
            }
        }
        // The standard error of the Jaccard estimate from k = 256 is about sqrt(J(1-J)/k) = 0.029
        // for J = 0.286, 10% of the estimate: most runs, not all, fall within 10%.
        assertTrue(within >= 12, within + " of " + runs + " runs within 10%");
    }

    @Test
    void disjointGuestsShareNothingAndTwinsShareEverything() {
        GuestSketch a = hashes(0, 30_000, 7);
        GuestSketch b = hashes(30_000, 30_000, 7);
        assertEquals(0.0, GuestSketch.sharedPages(a, b));
        GuestSketch twin = hashes(0, 30_000, 7);
        assertEquals(a.distinctPages(), GuestSketch.sharedPages(a, twin), 1e-6);
    }

    @Test
    void aSketchReadBackEstimatesTheSame() {
        GuestSketch a = hashes(0, 10_000, 3);
        GuestSketch copy = GuestSketch.of(a.values(), a.pages());
        assertArrayEquals(a.values(), copy.values());
        assertEquals(a.distinctPages(), copy.distinctPages());
        assertThrows(IllegalArgumentException.class, () -> GuestSketch.of(new long[] {5, 5}, 2));
        assertThrows(IllegalArgumentException.class, () -> GuestSketch.of(new long[GuestSketch.K + 1], 0));
    }

    @Test
    void itsJsonFieldsNameTheHashAndReadBackToTheSameSketch() {
        GuestSketch a = sketch(0, 400, 2);
        Map<String, Object> fields = a.fields();
        assertEquals(List.of("hash", "k", "pages", "distinct_pages", "values"), List.copyOf(fields.keySet()));
        assertEquals("nh-public-1", fields.get("hash"));
        assertEquals(800L, fields.get("pages"));
        assertEquals(GuestSketch.K, ((List<?>) fields.get("values")).size());
        GuestSketch back = GuestSketch.fromFields(fields);
        assertArrayEquals(a.values(), back.values());
        assertEquals(a.distinctPages(), back.distinctPages());
        assertEquals(a.pages(), back.pages());
        assertEquals(GuestSketch.HASH, back.hash());
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> GuestSketch.fromFields(Map.of("values", List.of("12", "xyz"), "pages", 2)));
        assertEquals("sketch value 1 'xyz' is not 64-bit hex", e.getMessage());
    }

    /** A sketch written before sketches named their hash is of XXH3-64, and does not compare with one of NH. */
    @Test
    void sketchesOfDifferentPageHashesAreNotCompared() {
        GuestSketch now = sketch(0, 10, 1);
        GuestSketch first = GuestSketch.fromFields(Map.of("values", List.of("5", "9"), "pages", 2));
        assertEquals(GuestSketch.FIRST_HASH, first.hash());
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> GuestSketch.sharedPages(now, first));
        assertEquals("a sketch of page hash xxh3-64 does not compare with one of nh-public-1 (scan every guest with "
                + "one samepage version)", e.getMessage());
        assertEquals(2.0, GuestSketch.sharedPages(first, GuestSketch.fromFields(Map.of("values", List.of("5", "9")))));
    }

    /** A host's sketch is its guests' union: what a guest shares with the host is what it shares with any of them. */
    @Test
    void theUnionOfSketchesIsTheSketchOfTheGuestsTogether() {
        GuestSketch a = hashes(0, 20_000, 5);
        GuestSketch b = hashes(15_000, 20_000, 5);
        GuestSketch both = hashes(0, 35_000, 5);
        GuestSketch union = GuestSketch.union(List.of(a, b));
        assertArrayEquals(both.values(), union.values());
        assertEquals(a.pages() + b.pages(), union.pages());
        GuestSketch pending = hashes(30_000, 10_000, 5);
        assertEquals(GuestSketch.sharedPages(pending, both), GuestSketch.sharedPages(pending, union));
        assertThrows(IllegalArgumentException.class, () -> GuestSketch.union(List.of(a,
                GuestSketch.fromFields(Map.of("values", List.of("5"))))));
        assertThrows(java.util.NoSuchElementException.class, () -> GuestSketch.union(List.of()));
    }

    /** Contents first..first+count-1 as real pages, each {@code copies} times. */
    private static GuestSketch sketch(int first, int count, int copies) {
        GuestSketch s = new GuestSketch();
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment page = arena.allocate(PAGE);
            for (int copy = 0; copy < copies; copy++) {
                for (int c = first; c < first + count; c++) {
                    page.fill((byte) 0);
                    page.set(ValueLayout.JAVA_LONG_UNALIGNED, 0, c + 1L);
                    page.set(ValueLayout.JAVA_LONG_UNALIGNED, 8, 0x5a5a5a5aL);
                    s.addPage(page, 0);
                }
            }
        }
        return s;
    }

    /** Contents as distinct pseudo-random page hashes; content c has the same hash in every guest. */
    private static GuestSketch hashes(int first, int count, long seed) {
        GuestSketch s = new GuestSketch();
        for (int c = first; c < first + count; c++) {
            s.addHash(new SplittableRandom(seed * 1_000_003L + c).nextLong());
        }
        return s;
    }
}
