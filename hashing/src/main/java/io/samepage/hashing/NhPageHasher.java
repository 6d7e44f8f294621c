package io.samepage.hashing;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * A keyed page hash in the NH family (the inner hash of UMAC, RFC 4418), specialised to 4 KiB.
 *
 * <p>The page is read as 512 little-endian 64-bit words {@code m[i]}, each split into 32-bit halves.
 * With a key {@code k[0..511]} expanded from the seed:
 * <pre>
 *   NH(m) = sum over i of ((m[i].lo + k[i].lo) mod 2^32) * ((m[i].hi + k[i].hi) mod 2^32)   (mod 2^64)
 * </pre>
 * then an avalanche step. For two different pages and a key drawn at random, NH collides with
 * probability at most 2^-32 (Black et al., "UMAC: Fast and Secure Message Authentication", 1999), so a
 * tenant that does not know the key cannot steer its pages onto another page's hash.
 *
 * <p>The key is 4 KiB, expanded from the 64-bit seed with SplitMix64; seed 0 still gives a key (NH
 * has no published unkeyed form), so callers that want secrecy pass a random seed.
 */
final class NhPageHasher implements PageHasher {

    private static final ValueLayout.OfLong WORD =
            ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final int WORDS = Pages.PAGE_SIZE / Long.BYTES;
    private static final long LOW = 0xFFFF_FFFFL;
    private static final long HIGH = ~LOW;

    private final long seed;
    private final long[] key = new long[WORDS];

    NhPageHasher(long seed) {
        this.seed = seed;
        for (int i = 0; i < WORDS; i++) {
            key[i] = Mix.splitMix(seed, i);
        }
    }

    /**
     * One loop C2 vectorizes (SuperWord: 64-bit lanes, the product as {@code vpmuludq} because both
     * factors are visibly 32-bit, the sum kept in a vector register until the end). Keep its shape: an
     * {@code int} counter, one load per word, one key word, one accumulator. The low factor is the low
     * half of {@code m + k}; the high factor adds only {@code k}'s high half, so no carry crosses over.
     */
    @Override
    public long hash(MemorySegment memory, long offset) {
        Pages.checkPage(memory, offset);
        long sum = 0;
        for (int i = 0; i < WORDS; i++) {
            long m = memory.get(WORD, offset + ((long) i << 3));
            long k = key[i];
            sum += ((m + k) & LOW) * ((m + (k & HIGH)) >>> 32);
        }
        return Mix.avalanche(sum);
    }

    @Override
    public HashAlgorithm algorithm() {
        return HashAlgorithm.NH;
    }

    @Override
    public long seed() {
        return seed;
    }
}
