package io.samepage.hashing;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/** {@link PageDigest}: a function of the page bytes and the seed only, and both halves keyed apart. */
class PageDigestTest {

    private static final long SEED = Long.getLong("samepage.seed", System.nanoTime());

    @Test
    void digestDependsOnlyOnThePageBytesAndEveryBitFlipChangesBothHalves() {
        SplittableRandom random = new SplittableRandom(SEED);
        PageDigest digest = new PageDigest(random.nextLong());
        String note = " (replay with -Dsamepage.seed=" + SEED + ")";
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment a = arena.allocate(2 * Pages.PAGE_SIZE + 8);
            long[] x = new long[2];
            long[] y = new long[2];
            for (int t = 0; t < 200; t++) {
                for (long i = 0; i < Pages.PAGE_SIZE; i++) {
                    a.set(ValueLayout.JAVA_BYTE, i, (byte) random.nextInt());
                }
                long elsewhere = Pages.PAGE_SIZE + 1 + random.nextInt(7);
                MemorySegment.copy(a, 0, a, elsewhere, Pages.PAGE_SIZE);
                digest.digest(a, 0, x);
                digest.digest(a, elsewhere, y);
                assertArrayEquals(x, y, "same bytes at another offset" + note);
                long bit = random.nextLong(8L * Pages.PAGE_SIZE);
                a.set(ValueLayout.JAVA_BYTE, bit >>> 3, (byte) (a.get(ValueLayout.JAVA_BYTE, bit >>> 3) ^ (1 << (bit & 7))));
                digest.digest(a, 0, y);
                assertNotEquals(x[0], y[0], "high half after flipping bit " + bit + note);
                assertNotEquals(x[1], y[1], "low half after flipping bit " + bit + note);
            }
        }
    }

    @Test
    void theSeedKeysTheDigestAndItsHalvesDiffer() {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment page = arena.allocate(Pages.PAGE_SIZE);
            page.set(ValueLayout.JAVA_LONG, 8, 0x1234_5678_9ABC_DEF0L);
            long[] one = new long[2];
            long[] two = new long[2];
            new PageDigest(1).digest(page, 0, one);
            new PageDigest(2).digest(page, 0, two);
            assertNotEquals(one[0], two[0]);
            assertNotEquals(one[1], two[1]);
            assertNotEquals(one[0], one[1], "the two halves come from independent keys");
            new PageDigest(1).digest(page, 0, two);
            assertArrayEquals(one, two);
            assertEquals(1, new PageDigest(1).seed());
        }
    }

    /**
     * The sketch hash is a public function of the page alone: pinned here to one value, so a change to
     * its key or loop fails this test and must come with a new {@link PageDigest#SKETCH_HASH}, which
     * {@code samepage similar} checks before it compares sketches.
     */
    @Test
    void theSketchHashIsPublicPinnedAndDependsOnlyOnThePage() {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment page = arena.allocate(2 * Pages.PAGE_SIZE + 8);
            for (int i = 0; i < Pages.PAGE_SIZE / Long.BYTES; i++) {
                page.set(ValueLayout.JAVA_LONG_UNALIGNED, 8L * i, 0x9E37_79B9_7F4A_7C15L * (i + 1));
            }
            long hash = PageDigest.sketchHash(page, 0);
            assertEquals("nh-public-1", PageDigest.SKETCH_HASH);
            assertEquals(0x041e_c028_8ac4_fae3L, hash, "sketch hash " + Long.toHexString(hash) + " changed: bump SKETCH_HASH");
            assertEquals(HashAlgorithm.NH.newHasher(PageDigest.SKETCH_SEED).hash(page, 0), hash, "NH under the public seed");
            MemorySegment.copy(page, 0, page, Pages.PAGE_SIZE + 3, Pages.PAGE_SIZE);
            assertEquals(hash, PageDigest.sketchHash(page, Pages.PAGE_SIZE + 3), "same bytes at another offset");
            page.set(ValueLayout.JAVA_BYTE, 4095, (byte) 1);
            assertNotEquals(hash, PageDigest.sketchHash(page, 0), "the last byte counts");
        }
    }
}
