package io.samepage.hashing;

/** 64-bit mixing steps shared by the page hashers. */
final class Mix {

    private Mix() {
    }

    /**
     * A bijective avalanche step (the finalizer of SplitMix64 / MurmurHash3's fmix64 family): every
     * input bit flips each output bit with probability close to one half. Being a bijection it never
     * adds collisions.
     */
    static long avalanche(long x) {
        x = (x ^ (x >>> 30)) * 0xBF58476D1CE4E5B9L;
        x = (x ^ (x >>> 27)) * 0x94D049BB133111EBL;
        return x ^ (x >>> 31);
    }
}
