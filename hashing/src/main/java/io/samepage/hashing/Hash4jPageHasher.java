package io.samepage.hashing;

import com.dynatrace.hash4j.hashing.ByteAccess;
import com.dynatrace.hash4j.hashing.Hasher64;
import java.lang.foreign.MemorySegment;

/** A hash4j function read straight from the segment through {@code ByteAccess.forMemorySegment}. */
final class Hash4jPageHasher implements PageHasher {

    private static final ByteAccess<MemorySegment> ACCESS = ByteAccess.forMemorySegment(MemorySegment.class);

    private final HashAlgorithm algorithm;
    private final long seed;
    private final Hasher64 hasher;

    Hash4jPageHasher(HashAlgorithm algorithm, long seed, Hasher64 hasher) {
        this.algorithm = algorithm;
        this.seed = seed;
        this.hasher = hasher;
    }

    @Override
    public long hash(MemorySegment memory, long offset) {
        Pages.checkPage(memory, offset);
        return hasher.hashBytesToLong(memory, offset, Pages.PAGE_SIZE, ACCESS);
    }

    @Override
    public HashAlgorithm algorithm() {
        return algorithm;
    }

    @Override
    public long seed() {
        return seed;
    }
}
