package io.samepage.hashing;

import com.dynatrace.hash4j.hashing.Hashing;

/** The page hash functions Samepage offers. Each makes thread-confined {@link PageHasher}s. */
public enum HashAlgorithm {

    /** XXH64 through lz4-java: the baseline the design names. */
    XXH64 {
        @Override
        public PageHasher newHasher(long seed) {
            return new Xxh64PageHasher(seed);
        }
    },

    /** XXH3 64-bit through hash4j, read from the segment without a copy. */
    XXH3 {
        @Override
        public PageHasher newHasher(long seed) {
            return new Hash4jPageHasher(this, seed, Hashing.xxh3_64(seed));
        }
    },

    /** komihash 5.0 through hash4j, read from the segment without a copy. */
    KOMIHASH {
        @Override
        public PageHasher newHasher(long seed) {
            return new Hash4jPageHasher(this, seed, Hashing.komihash5_0(seed));
        }
    },

    /** Two half-page JDK CRC32C values: fast, but linear, so collisions can be crafted for every seed. */
    CRC32C {
        @Override
        public PageHasher newHasher(long seed) {
            return new Crc32cPageHasher(seed);
        }
    },

    /**
     * Keyed NH (UMAC's inner hash), the default: for a random key two different pages collide with
     * probability at most 2^-32. See {@code NhPageHasher}.
     */
    NH {
        @Override
        public PageHasher newHasher(long seed) {
            return new NhPageHasher(seed);
        }
    };

    /**
     * The algorithm the engine uses unless told otherwise: {@link #NH}, keyed per engine with a random
     * seed.
     *
     * <p>Why keyed: the fast hash only filters merge candidates (a full compare decides), but the
     * engine's indexes are only as fast as the hash spreads pages. With a hash whose collisions can be
     * computed offline, a hostile tenant fills its memory with thousands of distinct pages of one hash
     * value and turns every index lookup among them into a walk over all of them: quadratic work for the
     * scanner. NH's collisions depend on a secret key: two different pages chosen without it collide
     * with probability at most 2^-32 (see {@code NhPageHasher}). C2 vectorizes NH's loop, so it runs at
     * memory speed like CRC32C; docs/perf/hashing.md has the measurement.
     *
     * <p>Rejected: {@link #CRC32C}, the default before, because CRC is affine over GF(2), so crafted
     * collisions hold for every seed; {@link #XXH64}, {@link #XXH3} and {@link #KOMIHASH}, seeded but
     * with no bound against chosen pages (hash flooding found seed-independent multicollisions in
     * MurmurHash3 and CityHash, hashes of this kind); SipHash or another keyed PRF, more than a filter needs and one serial chain
     * of rounds per word, which no compiler can spread over vector lanes; a 64-bit NH with
     * {@link Math#unsignedMultiplyHigh} (2^-64, but C2 does not vectorize it); the Vector API, an
     * incubator module every embedder would have to add, for no measured gain over the vectorized
     * loop on pages read from memory.
     *
     * <p>An image index records which algorithm its fast hashes come from, so indexes built while
     * CRC32C was the default keep their meaning.
     */
    public static HashAlgorithm defaultAlgorithm() {
        return NH;
    }

    /** Makes a hasher keyed with {@code seed}; 0 gives the published unkeyed function where one exists. */
    public abstract PageHasher newHasher(long seed);
}
