package io.samepage.hashing;

import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.util.zip.CRC32C;

/**
 * Two JDK CRC32C values, one per half page, joined into 64 bits and avalanched.
 *
 * <p>Why: the JDK computes CRC32C with the processor's CRC instruction on three interleaved streams,
 * so it runs at close to memory bandwidth. One CRC
 * would give only 32 bits; a second CRC of the same bytes with another start value adds nothing (CRC
 * is affine), so the second 32 bits come from the other half.
 *
 * <p>The limit, stated plainly: CRC is linear, so anyone who can choose page contents can make two
 * different pages collide whatever the seed; the seed only moves where values land. That costs a
 * wasted full compare, never a wrong merge, but thousands of crafted pages on one value make the
 * engine's indexes quadratic. That is why the default is {@link HashAlgorithm#NH}, whose collisions
 * depend on a secret key.
 */
final class Crc32cPageHasher implements PageHasher {

    private static final int HALF = Pages.PAGE_SIZE / 2;

    private final long seed;
    private final CRC32C crc = new CRC32C();
    private final SegmentViews views = new SegmentViews();

    Crc32cPageHasher(long seed) {
        this.seed = seed;
    }

    @Override
    public long hash(MemorySegment memory, long offset) {
        Pages.checkPage(memory, offset);
        ByteBuffer view = views.viewOf(memory, offset);
        int start = SegmentViews.positionOf(offset);
        long low = crcOf(view, start);
        long high = crcOf(view, start + HALF);
        return Mix.avalanche((high << 32 | low) ^ seed);
    }

    private long crcOf(ByteBuffer view, int start) {
        crc.reset();
        view.limit(start + HALF).position(start);
        crc.update(view);
        return crc.getValue();
    }

    @Override
    public HashAlgorithm algorithm() {
        return HashAlgorithm.CRC32C;
    }

    @Override
    public long seed() {
        return seed;
    }
}
