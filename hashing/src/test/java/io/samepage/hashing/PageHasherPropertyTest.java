package io.samepage.hashing;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.management.ManagementFactory;
import java.util.SplittableRandom;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * Seeded randomized properties of every page hasher. A failure message names the seed; set
 * {@code -Dsamepage.seed=N} to replay exactly that run.
 */
class PageHasherPropertyTest {

    private static final long SEED = Long.getLong("samepage.seed", System.nanoTime());
    private static final int TRIALS = 200;

    private static String seedNote() {
        return " (replay with -Dsamepage.seed=" + SEED + ")";
    }

    @ParameterizedTest
    @EnumSource(HashAlgorithm.class)
    void hashDependsOnlyOnThePageBytesNotWhereTheyLie(HashAlgorithm algorithm) {
        SplittableRandom random = new SplittableRandom(SEED);
        PageHasher hasher = algorithm.newHasher(random.nextLong());
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment a = arena.allocate(4 * Pages.PAGE_SIZE, Pages.PAGE_SIZE);
            MemorySegment b = arena.allocate(4 * Pages.PAGE_SIZE + 8);
            for (int t = 0; t < TRIALS; t++) {
                fillRandom(a, 0, random);
                long offset = 1 + random.nextInt(3 * Pages.PAGE_SIZE);
                MemorySegment.copy(a, 0, b, offset, Pages.PAGE_SIZE);
                byte[] heap = a.asSlice(0, Pages.PAGE_SIZE).toArray(ValueLayout.JAVA_BYTE);
                long expected = hasher.hash(a, 0);
                assertEquals(expected, hasher.hash(b, offset), algorithm + " off-heap at " + offset + seedNote());
                assertEquals(expected, hasher.hash(MemorySegment.ofArray(heap), 0), algorithm + " heap" + seedNote());
                assertEquals(expected, algorithm.newHasher(hasher.seed()).hash(a, 0), algorithm + " new hasher" + seedNote());
            }
        }
    }

    @ParameterizedTest
    @EnumSource(HashAlgorithm.class)
    void flippingAnyOneBitChangesTheHash(HashAlgorithm algorithm) {
        SplittableRandom random = new SplittableRandom(SEED);
        PageHasher hasher = algorithm.newHasher(random.nextLong());
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment page = arena.allocate(Pages.PAGE_SIZE);
            for (int t = 0; t < TRIALS; t++) {
                fillRandom(page, 0, random);
                long before = hasher.hash(page, 0);
                int bit = random.nextInt(Pages.PAGE_SIZE * 8);
                flip(page, bit);
                assertNotEquals(before, hasher.hash(page, 0), algorithm + " bit " + bit + seedNote());
                flip(page, bit);
                assertEquals(before, hasher.hash(page, 0), algorithm + " restored" + seedNote());
            }
        }
    }

    @ParameterizedTest
    @EnumSource(HashAlgorithm.class)
    void theSeedKeysTheFunction(HashAlgorithm algorithm) {
        SplittableRandom random = new SplittableRandom(SEED);
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment page = arena.allocate(Pages.PAGE_SIZE);
            fillRandom(page, 0, random);
            long seed = random.nextLong();
            assertNotEquals(algorithm.newHasher(seed).hash(page, 0), algorithm.newHasher(seed + 1).hash(page, 0),
                    algorithm + seedNote());
            assertEquals(seed, algorithm.newHasher(seed).seed());
            assertEquals(algorithm, algorithm.newHasher(seed).algorithm());
        }
    }

    @ParameterizedTest
    @EnumSource(HashAlgorithm.class)
    void aPageThatDoesNotFitIsRefused(HashAlgorithm algorithm) {
        PageHasher hasher = algorithm.newHasher(1);
        MemorySegment small = MemorySegment.ofArray(new byte[Pages.PAGE_SIZE + 7]);
        assertThrows(IndexOutOfBoundsException.class, () -> hasher.hash(small, 8));
        assertThrows(IndexOutOfBoundsException.class, () -> hasher.hash(small, -1));
    }

    /** Hashers that view segments through 1 GiB ByteBuffer windows must hash pages on either side of a seam. */
    @ParameterizedTest
    @EnumSource(value = HashAlgorithm.class, names = {"XXH64", "CRC32C"})
    void pagesAcrossAGigabyteWindowSeamHashLikeAnywhereElse(HashAlgorithm algorithm) {
        long seam = 1L << 30;
        SplittableRandom random = new SplittableRandom(SEED);
        PageHasher hasher = algorithm.newHasher(7);
        PageHasher reference = HashAlgorithm.XXH3.newHasher(7);
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment big = arena.allocate(seam + 4L * Pages.PAGE_SIZE);
            MemorySegment copy = arena.allocate(Pages.PAGE_SIZE);
            for (long offset : new long[] {seam - Pages.PAGE_SIZE, seam - 100, seam, seam + 3 * Pages.PAGE_SIZE, 0}) {
                fillRandom(big, offset, random);
                MemorySegment.copy(big, offset, copy, 0, Pages.PAGE_SIZE);
                assertEquals(hasher.hash(copy, 0), hasher.hash(big, offset), algorithm + " at " + offset + seedNote());
                assertEquals(reference.hash(copy, 0), reference.hash(big, offset));
            }
        }
    }

    @ParameterizedTest
    @EnumSource(HashAlgorithm.class)
    void hashingTheSameSegmentAgainAllocatesNothing(HashAlgorithm algorithm) {
        var threads = (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();
        PageHasher hasher = algorithm.newHasher(3);
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment region = arena.allocate(64 * Pages.PAGE_SIZE);
            fillRandom(region, 0, new SplittableRandom(SEED));
            long sink = hashRounds(hasher, region, 2_000);
            long before = threads.getCurrentThreadAllocatedBytes();
            sink += hashRounds(hasher, region, 2_000);
            long allocated = threads.getCurrentThreadAllocatedBytes() - before;
            long pages = 2_000L * 64;
            assertTrue(allocated < pages / 16, algorithm + " allocated " + allocated + " bytes for " + pages
                    + " pages (sink " + sink + ")");
        }
    }

    private static long hashRounds(PageHasher hasher, MemorySegment region, int rounds) {
        long acc = 0;
        for (int r = 0; r < rounds; r++) {
            for (long off = 0; off < region.byteSize(); off += Pages.PAGE_SIZE) {
                acc += hasher.hash(region, off);
            }
        }
        return acc;
    }

    static void fillRandom(MemorySegment segment, long offset, SplittableRandom random) {
        for (int i = 0; i < Pages.PAGE_SIZE; i += 8) {
            segment.set(ValueLayout.JAVA_LONG_UNALIGNED, offset + i, random.nextLong());
        }
    }

    private static void flip(MemorySegment page, int bit) {
        byte b = page.get(ValueLayout.JAVA_BYTE, bit >>> 3);
        page.set(ValueLayout.JAVA_BYTE, bit >>> 3, (byte) (b ^ (1 << (bit & 7))));
    }

    @org.junit.jupiter.api.Test
    void zeroPageTestAndEqualityAreExactToTheByte() {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment a = arena.allocate(Pages.PAGE_SIZE + 16);
            MemorySegment b = arena.allocate(Pages.PAGE_SIZE);
            assertTrue(Pages.isZeroPage(a, 16));
            assertTrue(Pages.equal(a, 3, b, 0));
            for (int i = 0; i < Pages.PAGE_SIZE; i++) {
                a.set(ValueLayout.JAVA_BYTE, 16 + i, (byte) 1);
                assertFalse(Pages.isZeroPage(a, 16), "byte " + i);
                assertFalse(Pages.equal(a, 16, b, 0), "byte " + i);
                b.set(ValueLayout.JAVA_BYTE, i, (byte) 1);
                assertTrue(Pages.equal(a, 16, b, 0), "byte " + i);
                a.set(ValueLayout.JAVA_BYTE, 16 + i, (byte) 0);
                b.set(ValueLayout.JAVA_BYTE, i, (byte) 0);
            }
            assertThrows(IndexOutOfBoundsException.class, () -> Pages.isZeroPage(a, 17));
            assertThrows(IndexOutOfBoundsException.class, () -> Pages.equal(a, 0, b, 1));
        }
    }

    @org.junit.jupiter.api.Test
    void contentDigestIsStableAndSeesEveryByte() {
        SplittableRandom random = new SplittableRandom(SEED);
        ContentDigest digest = new ContentDigest();
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment page = arena.allocate(Pages.PAGE_SIZE);
            fillRandom(page, 0, random);
            byte[] first = digest.digest(page, 0);
            assertEquals(ContentDigest.LENGTH, first.length);
            byte[] into = new byte[40];
            digest.digest(page, 0, into, 8);
            assertEquals(java.util.HexFormat.of().formatHex(first),
                    java.util.HexFormat.of().formatHex(into, 8, 40), seedNote());
            int bit = random.nextInt(Pages.PAGE_SIZE * 8);
            flip(page, bit);
            assertFalse(java.util.Arrays.equals(first, digest.digest(page, 0)), "bit " + bit + seedNote());
            assertThrows(IllegalArgumentException.class, () -> digest.digest(page, 0, new byte[31], 0));
        }
    }
}
