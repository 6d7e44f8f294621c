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
 * tenant that does not know the key cannot steer its pages onto another page's hash. Four independent
 * accumulators keep the multiplier busy.
 *
 * <p>The key is 4 KiB, expanded from the 64-bit seed with SplitMix64; seed 0 still gives a key (NH
 * has no published unkeyed form), so callers that want secrecy pass a random seed.
 */
final class NhPageHasher implements PageHasher {

    private static final ValueLayout.OfLong WORD =
            ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final int WORDS = Pages.PAGE_SIZE / Long.BYTES;
    private static final long LOW = 0xFFFF_FFFFL;

    private final long seed;
    private final long[] keyLow = new long[WORDS];
    private final long[] keyHigh = new long[WORDS];

    NhPageHasher(long seed) {
        this.seed = seed;
        for (int i = 0; i < WORDS; i++) {
            long k = Mix.splitMix(seed, i);
            keyLow[i] = k & LOW;
            keyHigh[i] = k >>> 32;
        }
    }

    @Override
    public long hash(MemorySegment memory, long offset) {
        Pages.checkPage(memory, offset);
        long a0 = 0;
        long a1 = 0;
        long a2 = 0;
        long a3 = 0;
        for (int i = 0; i < WORDS; i += 4) {
            long p = offset + ((long) i << 3);
            a0 += term(memory.get(WORD, p), i);
            a1 += term(memory.get(WORD, p + 8), i + 1);
            a2 += term(memory.get(WORD, p + 16), i + 2);
            a3 += term(memory.get(WORD, p + 24), i + 3);
        }
        return Mix.avalanche(a0 + a1 + a2 + a3);
    }

    private long term(long m, int i) {
        return ((m + keyLow[i]) & LOW) * (((m >>> 32) + keyHigh[i]) & LOW);
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
