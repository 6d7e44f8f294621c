package io.samepage.hashing;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.security.InvalidKeyException;
import java.security.NoSuchAlgorithmException;
import javax.crypto.Mac;
import javax.crypto.spec.SecretKeySpec;

/**
 * A keyed page hash in the NH family (the inner hash of UMAC, RFC 4418), specialised to 4 KiB.
 *
 * <p>The page is read as 512 little-endian 64-bit words {@code m[i]}, each split into 32-bit halves.
 * With a key of 512 words {@code k[i]}:
 * <pre>
 *   NH(m) = sum over i of ((m[i].lo + k[i].lo) mod 2^32) * ((m[i].hi + k[i].hi) mod 2^32)   (mod 2^64)
 *   hash(m) = avalanche(NH(m))
 * </pre>
 * This is NH over 32-bit words (w = 32) with the halves of each 64-bit word as its pairs.
 *
 * <h2>Collision bound</h2>
 * For any two different pages {@code m != m'} fixed without knowledge of the key, and a key drawn
 * uniformly at random, {@code Pr[NH(m) = NH(m')] <= 2^-32}: NH[n, w] is 2^-w-almost-universal on
 * equal-length strings (Black, Halevi, Krawczyk, Krovetz, Rogaway, "UMAC: Fast and Secure Message
 * Authentication", CRYPTO 1999). The avalanche is a bijection, so the 64-bit hash collides exactly when NH does and the
 * same bound holds. The key is HMAC-SHA256 in counter mode keyed with the 64-bit seed (see
 * {@link #expandKey}), so for a seed drawn at random the bound holds up to the advantage of telling
 * HMAC-SHA256 from a random function, the usual PRF assumption; the engine draws its seed from
 * {@code SecureRandom}. The bound is against a tenant that chooses pages but never sees hash values:
 * NH is not a MAC, and hash values of chosen pages would give the key away. Samepage never shows them.
 * A collision costs one wasted full compare, never a wrong merge.
 *
 * <h2>Speed</h2>
 * The loop is written so that C2 vectorizes it (see {@link #hash}); the Vector API (an incubator
 * module every embedder would have to add) and a 64-bit NH with {@code Math.unsignedMultiplyHigh}
 * (which C2 does not vectorize) were measured and rejected: docs/perf/hashing.md.
 *
 * <p>Seed 0 still gives a key (NH has no published unkeyed form); it is public, so callers that want
 * secrecy pass a random seed. Making a hasher computes the 4 KiB key (128 HMAC-SHA256 blocks); hashing
 * allocates nothing.
 */
final class NhPageHasher implements PageHasher {

    private static final ValueLayout.OfLong WORD =
            ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final int WORDS = Pages.PAGE_SIZE / Long.BYTES;
    private static final long LOW = 0xFFFF_FFFFL;
    private static final long HIGH = ~LOW;
    private static final String KEY_LABEL = "samepage NH page key";

    private final long seed;
    private final long[] key = new long[WORDS];

    NhPageHasher(long seed) {
        this.seed = seed;
        expandKey(seed, key);
    }

    /**
     * Fills {@code key} with HMAC-SHA256 in counter mode: block {@code b} (32 bytes, four little-endian
     * words {@code key[4b..4b+3]}) is HMAC-SHA256 under the seed's 8 little-endian bytes of the label
     * {@value #KEY_LABEL} followed by {@code b} as 4 little-endian bytes.
     */
    static void expandKey(long seed, long[] key) {
        try {
            Mac mac = Mac.getInstance("HmacSHA256");
            mac.init(new SecretKeySpec(ByteBuffer.allocate(Long.BYTES).order(ByteOrder.LITTLE_ENDIAN)
                    .putLong(seed).array(), "HmacSHA256"));
            byte[] label = KEY_LABEL.getBytes(StandardCharsets.US_ASCII);
            ByteBuffer counter = ByteBuffer.allocate(Integer.BYTES).order(ByteOrder.LITTLE_ENDIAN);
            for (int block = 0; block < key.length / 4; block++) {
                mac.update(label);
                mac.update(counter.putInt(0, block).array());
                ByteBuffer out = ByteBuffer.wrap(mac.doFinal()).order(ByteOrder.LITTLE_ENDIAN);
                for (int w = 0; w < 4; w++) {
                    key[4 * block + w] = out.getLong();
                }
            }
        } catch (NoSuchAlgorithmException | InvalidKeyException e) {
            throw new IllegalStateException("every Java platform must provide HmacSHA256", e);
        }
    }

    /**
     * One loop that C2's SuperWord vectorizes into 64-bit lanes, the sum kept in a vector until the end
     * (with {@code -XX:-UseSuperWord} it falls back to scalar speed). Keep its shape: an {@code int}
     * counter (C2 does not vectorize this loop over a {@code long} offset), one load per word, one key
     * word, one accumulator. The low factor is the low half of {@code m + k}; the high factor adds
     * only {@code k}'s high half, so no carry crosses from one half into the other.
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
