package io.samepage.hashing;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.util.HashSet;
import java.util.Set;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/**
 * Pages crafted to collide under CRC32C, built the way a hostile tenant would build them, offline and
 * without the seed: the CRC of a fixed length is affine over GF(2), {@code crc(x ^ d) = crc(x) ^ L(d)}
 * with {@code L} linear, so every difference {@code d} in the kernel of {@code L} keeps the CRC of
 * every message. Gaussian elimination over the images of single-bit messages finds such differences
 * ({@link CrcCollisions}); XOR-combining them into a random page gives a family of distinct pages whose
 * two half-page CRCs are all equal. The keyed default must not collide on them. A failure message names
 * the seed; {@code -Dsamepage.seed=N} replays it.
 */
class CraftedCollisionTest {

    private static final long SEED = Long.getLong("samepage.seed", System.nanoTime());
    private static final int FAMILY_BITS = 8;
    private static final int FAMILY = 1 << FAMILY_BITS;

    @Test
    void pagesCraftedToCollideUnderCrc32cCollideForEverySeed() {
        MemorySegment pages = craftedFamily(new SplittableRandom(SEED));
        SplittableRandom random = new SplittableRandom(SEED + 1);
        for (long seed : new long[] {0, random.nextLong(), random.nextLong()}) {
            PageHasher crc = HashAlgorithm.CRC32C.newHasher(seed);
            long first = crc.hash(pages, 0);
            for (int p = 1; p < FAMILY; p++) {
                assertEquals(first, crc.hash(pages, (long) p * Pages.PAGE_SIZE), "page " + p + " seed " + seed);
            }
        }
    }

    /**
     * For a random key, NH makes any two of these pages collide with probability at most 2^-32, so all
     * 256 hash apart except with probability at most C(256, 2) * 2^-32 < 2^-16.
     */
    @Test
    void pagesCraftedToCollideUnderCrc32cDoNotCollideUnderTheKeyedDefault() {
        MemorySegment pages = craftedFamily(new SplittableRandom(SEED));
        long key = new SplittableRandom(SEED + 2).nextLong();
        PageHasher keyed = HashAlgorithm.defaultAlgorithm().newHasher(key);
        Set<Long> values = new HashSet<>();
        for (int p = 0; p < FAMILY; p++) {
            values.add(keyed.hash(pages, (long) p * Pages.PAGE_SIZE));
        }
        assertEquals(FAMILY, values.size(), HashAlgorithm.defaultAlgorithm() + " with key " + key
                + " (replay with -Dsamepage.seed=" + SEED + ")");
    }

    /** {@value #FAMILY} distinct pages: a random page with every combination of 8 kernel vectors XORed in ({@link CrcCollisions}). */
    private static MemorySegment craftedFamily(SplittableRandom random) {
        CrcCollisions collisions = new CrcCollisions();
        assertTrue(collisions.dimension() >= FAMILY_BITS, "kernel of dimension " + collisions.dimension());
        byte[] base = new byte[Pages.PAGE_SIZE];
        random.nextBytes(base);
        byte[] family = new byte[FAMILY * Pages.PAGE_SIZE];
        Set<ByteBuffer> distinct = new HashSet<>();
        for (int p = 0; p < FAMILY; p++) {
            System.arraycopy(collisions.page(base, p), 0, family, p * Pages.PAGE_SIZE, Pages.PAGE_SIZE);
            distinct.add(ByteBuffer.wrap(family, p * Pages.PAGE_SIZE, Pages.PAGE_SIZE).slice());
        }
        assertEquals(FAMILY, distinct.size(), "the crafted pages are distinct");
        return MemorySegment.ofArray(family);
    }
}
