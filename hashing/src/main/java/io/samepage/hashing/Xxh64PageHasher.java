package io.samepage.hashing;

import java.lang.foreign.MemorySegment;
import net.jpountz.xxhash.XXHash64;
import net.jpountz.xxhash.XXHashFactory;

/**
 * XXH64 through lz4-java (the maintained {@code at.yawk.lz4} fork): the design's baseline.
 *
 * <p>Uses lz4-java's safe Java instance: its "unsafe" instance calls {@code sun.misc.Unsafe}, which
 * JDK 25 warns about on every start, and its JNI instance unpacks a native library into a temporary
 * directory. On 256 MiB of direct memory the three ran within about 15% of each other here.
 */
final class Xxh64PageHasher implements PageHasher {

    private static final XXHash64 XXH64 = XXHashFactory.safeInstance().hash64();

    private final long seed;
    private final SegmentViews views = new SegmentViews();

    Xxh64PageHasher(long seed) {
        this.seed = seed;
    }

    @Override
    public long hash(MemorySegment memory, long offset) {
        Pages.checkPage(memory, offset);
        return XXH64.hash(views.viewOf(memory, offset), SegmentViews.positionOf(offset), Pages.PAGE_SIZE, seed);
    }

    @Override
    public HashAlgorithm algorithm() {
        return HashAlgorithm.XXH64;
    }

    @Override
    public long seed() {
        return seed;
    }
}
