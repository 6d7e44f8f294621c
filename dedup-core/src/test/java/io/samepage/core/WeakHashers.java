package io.samepage.core;

import io.samepage.hashing.HashAlgorithm;
import io.samepage.hashing.PageHasher;
import io.samepage.hashing.Pages;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * Hashers for tests: deliberately weak ones (the engine must stay correct, and bounded, whatever the
 * hash does), and a real one with a test's hook before each hash.
 */
final class WeakHashers {

    private WeakHashers() {
    }

    /** Every page hashes alike: the zero page's hash, every stable frame's and every candidate's. */
    static final class Constant implements PageHasher {
        @Override
        public long hash(MemorySegment memory, long offset) {
            Pages.checkPage(memory, offset);
            return 0x5EED_5EED_5EED_5EEDL;
        }

        @Override
        public HashAlgorithm algorithm() {
            return HashAlgorithm.CRC32C;
        }

        @Override
        public long seed() {
            return 0;
        }
    }

    /** A handful of values: the page's first byte modulo {@code keys}. */
    static final class Few implements PageHasher {
        private final int keys;

        Few(int keys) {
            this.keys = keys;
        }

        @Override
        public long hash(MemorySegment memory, long offset) {
            Pages.checkPage(memory, offset);
            return Byte.toUnsignedInt(memory.get(ValueLayout.JAVA_BYTE, offset)) % keys;
        }

        @Override
        public HashAlgorithm algorithm() {
            return HashAlgorithm.CRC32C;
        }

        @Override
        public long seed() {
            return 0;
        }
    }

    /** {@code real}, after running {@code beforeEachHash} (to count the hashes, or to fail one). */
    static PageHasher around(PageHasher real, Runnable beforeEachHash) {
        return new PageHasher() {
            @Override
            public long hash(MemorySegment memory, long offset) {
                beforeEachHash.run();
                return real.hash(memory, offset);
            }

            @Override
            public HashAlgorithm algorithm() {
                return real.algorithm();
            }

            @Override
            public long seed() {
                return real.seed();
            }
        };
    }
}
