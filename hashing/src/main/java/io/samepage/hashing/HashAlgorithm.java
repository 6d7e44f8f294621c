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

    /** Two half-page JDK CRC32C values; the fastest here, but linear: see {@link Crc32cPageHasher}. */
    CRC32C {
        @Override
        public PageHasher newHasher(long seed) {
            return new Crc32cPageHasher(seed);
        }
    },

    /** Keyed NH (UMAC's inner hash): collisions depend on a secret key. See {@link NhPageHasher}. */
    NH {
        @Override
        public PageHasher newHasher(long seed) {
            return new NhPageHasher(seed);
        }
    };

    /**
     * The algorithm the engine uses unless told otherwise: the fastest one {@code HashingBenchmark}
     * measured (see the README's hashing table).
     */
    public static HashAlgorithm defaultAlgorithm() {
        return CRC32C;
    }

    /** Makes a hasher keyed with {@code seed}; 0 gives the published unkeyed function where one exists. */
    public abstract PageHasher newHasher(long seed);
}
