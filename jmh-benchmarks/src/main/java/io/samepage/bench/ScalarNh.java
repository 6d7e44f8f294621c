package io.samepage.bench;

import io.samepage.hashing.Pages;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.SplittableRandom;

/**
 * The NH page hash as it was before it was vectorized (hashing's {@code NhPageHasher} at
 * {@code ad2fa2a}): the same formula over 512 words, written as four scalar accumulators with the key
 * split into two arrays of 32-bit halves. C2 does not vectorize this shape. Only
 * {@link HashingBenchmark} uses it, so that every run measures the old code beside the new; its key
 * comes from a {@link SplittableRandom}, which does not change its speed.
 */
final class ScalarNh {

    private static final ValueLayout.OfLong WORD =
            ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final int WORDS = Pages.PAGE_SIZE / Long.BYTES;
    private static final long LOW = 0xFFFF_FFFFL;

    private final long[] keyLow = new long[WORDS];
    private final long[] keyHigh = new long[WORDS];

    ScalarNh(long seed) {
        SplittableRandom random = new SplittableRandom(seed);
        for (int i = 0; i < WORDS; i++) {
            long k = random.nextLong();
            keyLow[i] = k & LOW;
            keyHigh[i] = k >>> 32;
        }
    }

    long hash(MemorySegment memory, long offset) {
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
        return a0 + a1 + a2 + a3;
    }

    private long term(long m, int i) {
        return ((m + keyLow[i]) & LOW) * (((m >>> 32) + keyHigh[i]) & LOW);
    }
}
