package io.samepage.hashing;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * A keyed 128-bit digest of a 4 KiB page, for estimates that count pages by content without keeping
 * them: two NH sums ({@link HashAlgorithm#NH}'s function) under two independent keys, computed in one
 * pass over the page, each put through a bijective avalanche.
 *
 * <h2>What it may be trusted for</h2>
 * For two different pages fixed without knowledge of the key, and a key drawn at random, each NH sum
 * collides with probability at most 2^-32 and the two keys are independent, so the 128-bit digest
 * collides with probability at most 2^-64 (UMAC's construction: independent NH iterations multiply
 * their bounds). Among a million pages (2^39 pairs) the expected number of false matches is below
 * 2^-25. An estimate may trust that; a merge never does, it compares the pages in full
 * ({@link Pages#equal}). The keys are HMAC-SHA256 of the seed in counter mode, blocks 0 to 127 for the
 * first and 128 to 255 for the second ({@code NhPageHasher#expandKey}); draw the seed at random.
 *
 * <p>Rejected: XXH3-128 (hash4j) and SHA-256. Both are unkeyed or only seeded, with no bound for pages
 * chosen by a tenant; XXH3-128 returns a new object per page; and on this project's machines both
 * were slower than this loop, which C2 vectorizes like {@code NhPageHasher}'s (docs/perf/estimator.md
 * has the comparison).
 *
 * <p>Thread safety: confined to one thread at a time; allocates nothing per page.
 */
public final class PageDigest {

    private static final ValueLayout.OfLong WORD =
            ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final int WORDS = Pages.PAGE_SIZE / Long.BYTES;
    private static final long LOW = 0xFFFF_FFFFL;
    private static final long HIGH = ~LOW;

    /**
     * The seed of {@link #sketchHash}'s key. Public and fixed, so the same page gives the same sketch
     * hash on every host and in every run; changing it changes {@link #SKETCH_HASH}.
     */
    public static final long SKETCH_SEED = 0x5ca1_ab1e_0000_0001L;

    /** What {@link #sketchHash} computes, version included, for the sketches that carry it. */
    public static final String SKETCH_HASH = "nh-public-1";

    private static final NhPageHasher SKETCH = new NhPageHasher(SKETCH_SEED);

    private final long seed;
    private final long[] first = new long[WORDS];
    private final long[] second = new long[WORDS];

    /** Expands the two keys from {@code seed} (256 HMAC-SHA256 blocks). */
    public PageDigest(long seed) {
        this.seed = seed;
        long[] both = new long[2 * WORDS];
        NhPageHasher.expandKey(seed, both);
        System.arraycopy(both, 0, first, 0, WORDS);
        System.arraycopy(both, WORDS, second, 0, WORDS);
    }

    public long seed() {
        return seed;
    }

    /**
     * Writes the digest of the page at {@code offset} of {@code memory} into {@code out[0]} (the high
     * 64 bits) and {@code out[1]} (the low 64 bits).
     */
    public void digest(MemorySegment memory, long offset, long[] out) {
        Pages.checkPage(memory, offset);
        long a = 0;
        long b = 0;
        for (int i = 0; i < WORDS; i++) {
            long m = memory.get(WORD, offset + ((long) i << 3));
            long k = first[i];
            long j = second[i];
            a += ((m + k) & LOW) * ((m + (k & HIGH)) >>> 32);
            b += ((m + j) & LOW) * ((m + (j & HIGH)) >>> 32);
        }
        out[0] = Mix.avalanche(a);
        out[1] = Mix.avalanche(b);
    }

    /**
     * An unkeyed 64-bit hash of the page for placement sketches: {@link HashAlgorithm#NH} under the
     * fixed public seed {@link #SKETCH_SEED}. The same page gives the same value on every
     * host and in every run, which is what lets sketches from different hosts be compared; for the same
     * reason it is no defence against pages crafted to collide, and nothing may merge on it.
     *
     * <p>Its own loop, not a third sum in {@link #digest}'s: C2's SuperWord does not vectorize a loop of
     * three NH sums, so one loop of three runs slower than two loops over the same page, the second
     * reading it from the cache the first brought it into (docs/perf/sketch.md measures both).
     */
    public static long sketchHash(MemorySegment memory, long offset) {
        return SKETCH.hash(memory, offset);
    }
}
