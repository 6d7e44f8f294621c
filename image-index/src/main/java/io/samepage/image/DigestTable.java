package io.samepage.image;

import io.samepage.hashing.ContentDigest;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.nio.ByteOrder;

/**
 * The non-zero blocks of an index by SHA-256 digest, filled in block order: for each block, the last
 * block before it with the same digest. What {@link DistinctBlocks} counts and {@link DuplicateBlocks}
 * records.
 *
 * <p>An open-addressing table of block numbers, probed by the first 8 bytes of each block's digest
 * (uniform already, so not mixed further); two blocks have the same content only if all 32 bytes of
 * their digests are equal: the probe key only filters. The table is a power of two at least twice the
 * non-zero blocks, at most 16 bytes per block. Block numbers are kept as {@code int}, so an index of
 * more than {@link Integer#MAX_VALUE} blocks (8 TiB, even if nearly all are zero) or of more than
 * {@link DistinctBlocks#MAX_BLOCKS} non-zero blocks gets no table.
 *
 * <p>Thread safety: none; one thread fills it. Allocates nothing after construction.
 */
final class DigestTable {

    private static final VarHandle FIRST_WORD = MethodHandles.byteArrayViewVarHandle(long[].class,
            ByteOrder.LITTLE_ENDIAN);

    private final ImageIndex index;
    private final int[] slots;
    private final int mask;
    private final byte[] digest = new byte[ContentDigest.LENGTH];

    private DigestTable(ImageIndex index, int capacity) {
        this.index = index;
        this.slots = new int[capacity];
        this.mask = capacity - 1;
    }

    /** An empty table for {@code index}'s blocks, or null if the index is too large for one (see above). */
    static DigestTable of(ImageIndex index) {
        long nonZero = index.blockCount() - index.zeroBlocks();
        if (nonZero > DistinctBlocks.MAX_BLOCKS || index.blockCount() > Integer.MAX_VALUE) {
            return null;
        }
        return new DigestTable(index, Integer.highestOneBit((int) Math.max(1, 2 * nonZero - 1)) << 1);
    }

    /**
     * Files non-zero {@code block}, which must come after every block filed before it.
     *
     * @return the last block filed before it with the same digest, or -1 if its content is new
     */
    int put(int block) {
        index.digest(block, digest, 0);
        int slot = (int) (long) FIRST_WORD.get(digest, 0) & mask;
        while (true) {
            int held = slots[slot];
            if (held == 0 || index.digestEquals(held - 1, digest, 0)) {
                slots[slot] = block + 1;       // 0 marks an empty slot
                return held - 1;
            }
            slot = (slot + 1) & mask;
        }
    }
}
