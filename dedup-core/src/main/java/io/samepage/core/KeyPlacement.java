package io.samepage.core;

/**
 * Where the indexes place a key (the fast hash folded to 32 bits): the key xor a per-engine secret,
 * through MurmurHash3's 32-bit finalizer, a bijection whose every output bit depends on every input
 * bit. Buckets, slots and filter bits are taken from the result, never from the key's own bits.
 *
 * <p>Why: with a hash whose values can be chosen (CRC32C, which an embedder may pick; the default,
 * keyed NH, gives keys nobody can predict), distinct keys crafted to share their low bits would
 * otherwise share a bucket or a run of slots, and every lookup there would walk all of them: n steps
 * per lookup, n^2 per full scan. Keys that are equal are a different matter: the indexes keep those
 * in a tree ordered by content ({@link ContentTree}).
 */
final class KeyPlacement {

    private KeyPlacement() {
    }

    /** The secret an index mixes in, from the secret it was made with. */
    static int secretOf(long secret) {
        return (int) (secret >>> 32) ^ (int) secret;
    }

    /** {@code key} placed under {@code secret}: take a bucket or a slot from its low bits. */
    static int place(int key, int secret) {
        int x = key ^ secret;
        x ^= x >>> 16;
        x *= 0x85EB_CA6B;
        x ^= x >>> 13;
        x *= 0xC2B2_AE35;
        x ^= x >>> 16;
        return x;
    }
}
