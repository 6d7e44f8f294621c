package io.samepage.hashing;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.SplittableRandom;
import java.util.zip.CRC32C;
import org.junit.jupiter.api.Test;

/**
 * Pages crafted to collide under CRC32C, built the way a hostile tenant would build them, offline and
 * without the seed: the CRC of a fixed length is affine over GF(2), {@code crc(x ^ d) = crc(x) ^ L(d)}
 * with {@code L} linear, so every difference {@code d} in the kernel of {@code L} keeps the CRC of
 * every message. Gaussian elimination over the images of single-bit messages finds such differences;
 * XOR-combining them into both halves of a random page gives a family of distinct pages whose two
 * half-page CRCs are all equal. The keyed default must not collide on them. A failure message names
 * the seed; {@code -Dsamepage.seed=N} replays it.
 */
class CraftedCollisionTest {

    private static final long SEED = Long.getLong("samepage.seed", System.nanoTime());
    private static final int HALF = Pages.PAGE_SIZE / 2;
    /** Single-bit messages to eliminate over, spread across the half page: 40 - 32 = 8 kernel vectors at least. */
    private static final int CANDIDATE_BITS = 40;
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

    /** {@value #FAMILY} distinct pages: a random page with every combination of the kernel differences XORed into both halves. */
    private static MemorySegment craftedFamily(SplittableRandom random) {
        List<byte[]> kernel = crcKernel();
        assertTrue(kernel.size() >= FAMILY_BITS, "kernel of dimension " + kernel.size());
        byte[] base = new byte[Pages.PAGE_SIZE];
        random.nextBytes(base);
        byte[] family = new byte[FAMILY * Pages.PAGE_SIZE];
        Set<ByteBuffer> distinct = new HashSet<>();
        for (int p = 0; p < FAMILY; p++) {
            int at = p * Pages.PAGE_SIZE;
            System.arraycopy(base, 0, family, at, Pages.PAGE_SIZE);
            for (int i = 0; i < FAMILY_BITS; i++) {
                if ((p >>> i & 1) != 0) {
                    byte[] d = kernel.get(i);
                    for (int b = 0; b < HALF; b++) {
                        family[at + b] ^= d[b];
                        family[at + HALF + b] ^= d[b];
                    }
                }
            }
            distinct.add(ByteBuffer.wrap(family, at, Pages.PAGE_SIZE).slice());
        }
        assertEquals(FAMILY, distinct.size(), "the crafted pages are distinct");
        return MemorySegment.ofArray(family);
    }

    /**
     * Non-zero differences of {@value #HALF} bytes that leave CRC32C unchanged, found by Gaussian
     * elimination over GF(2) on {@code L(e_j) = crc(e_j) ^ crc(0)} for single-bit messages {@code e_j}.
     * Each comes from a distinct new single bit, so they are linearly independent.
     */
    static List<byte[]> crcKernel() {
        byte[] zeros = new byte[HALF];
        long crcOfZeros = crc32c(zeros, 0);
        long[] pivotValue = new long[32];
        long[] pivotMask = new long[32];
        List<byte[]> kernel = new ArrayList<>();
        for (int j = 0; j < CANDIDATE_BITS; j++) {
            byte[] single = new byte[HALF];
            flipBit(single, bitOf(j));
            long value = crc32c(single, 0) ^ crcOfZeros;
            long mask = 1L << j;
            int top = 63 - Long.numberOfLeadingZeros(value);
            while (value != 0 && pivotMask[top] != 0) {
                value ^= pivotValue[top];
                mask ^= pivotMask[top];
                top = 63 - Long.numberOfLeadingZeros(value);
            }
            if (value != 0) {
                pivotValue[top] = value;
                pivotMask[top] = mask;
            } else {
                byte[] d = new byte[HALF];
                for (int i = 0; i < CANDIDATE_BITS; i++) {
                    if ((mask >>> i & 1) != 0) {
                        flipBit(d, bitOf(i));
                    }
                }
                assertEquals(crcOfZeros, crc32c(d, 0), "a kernel difference keeps the CRC");
                kernel.add(d);
            }
        }
        return kernel;
    }

    /** The j-th candidate bit, spread evenly over the half page. */
    private static int bitOf(int j) {
        return j * (HALF * 8 / CANDIDATE_BITS) + j % 8;
    }

    private static void flipBit(byte[] bytes, int bit) {
        bytes[bit >>> 3] ^= (byte) (1 << (bit & 7));
    }

    /** CRC32C of the {@value #HALF} bytes at {@code from}. */
    private static long crc32c(byte[] bytes, int from) {
        CRC32C crc = new CRC32C();
        crc.update(bytes, from, HALF);
        return crc.getValue();
    }
}
