package io.samepage.hashing;

import java.lang.foreign.MemorySegment;

/**
 * A 64-bit fast hash of one 4 KiB page.
 *
 * <p>The fast hash is a <em>filter</em>: equal pages have equal hashes, but equal hashes prove
 * nothing. Every merge compares the full page ({@link Pages#equal}); identity that lets a disk read
 * be skipped uses {@link ContentDigest} (SHA-256), never this.
 *
 * <p>Thread safety: an instance is confined to one thread (some keep a reusable view of the last
 * segment they hashed). Make one per thread with {@link HashAlgorithm#newHasher(long)}; that is cheap.
 * {@link #hash} allocates nothing when called again and again on the same segment object.
 */
public interface PageHasher {

    /**
     * Hashes the {@value Pages#PAGE_SIZE} bytes at {@code offset}.
     *
     * @throws IndexOutOfBoundsException if the page does not lie wholly inside {@code memory}
     */
    long hash(MemorySegment memory, long offset);

    /** The algorithm this hasher computes. */
    HashAlgorithm algorithm();

    /** The seed (key) this hasher was made with; 0 is the algorithm's published unkeyed function. */
    long seed();
}
