/**
 * Page fingerprints over {@link java.lang.foreign.MemorySegment}: a fast 64-bit filter hash, a SHA-256
 * content digest, the zero-page test and page equality.
 *
 * <h2>Two hashes, two jobs</h2>
 * <ul>
 *   <li>{@link io.samepage.hashing.PageHasher}: a fast 64-bit hash that only <em>filters</em>
 *       candidates. Equal hashes prove nothing: every merge is preceded by a full compare,
 *       {@link io.samepage.hashing.Pages#equal}. The scanner also uses it to tell that a page changed
 *       since its last visit (KSM's volatility rule); a collision there only delays a merge.</li>
 *   <li>{@link io.samepage.hashing.ContentDigest}: SHA-256, trusted as identity. Only it may justify
 *       skipping a disk read in the image index.</li>
 * </ul>
 *
 * <h2>Which fast hash, and why</h2>
 * {@link io.samepage.hashing.HashAlgorithm} lists the candidates; {@code HashingBenchmark} measures
 * them beside the read bandwidth of one core in the same run (docs/perf/hashing.md).
 * {@link io.samepage.hashing.HashAlgorithm#defaultAlgorithm()} is keyed NH: tenants choose page
 * contents, so the default must be a hash whose collisions they cannot compute without the engine's
 * secret key, and NH, vectorized by C2, runs at memory speed like the CRC32C instruction. Rejected:
 * a native XXH3 through FFM (a downcall per page plus a C library to ship, for a speed the JDK's CRC
 * instruction already reaches), and zero-allocation-hashing (fails on shared arenas).
 *
 * <h2>Invariants</h2>
 * No hasher allocates per page in steady state; hashers are confined to one thread; a page is exactly
 * {@link io.samepage.hashing.Pages#PAGE_SIZE} bytes and must lie wholly inside the segment.
 */
package io.samepage.hashing;
