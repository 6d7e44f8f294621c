package io.samepage.image;

import io.samepage.hashing.ContentDigest;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.nio.ByteOrder;

/**
 * Counts an image's distinct non-zero blocks from its index: the frames one copy of the image takes
 * once every duplicate block maps one frame, which is what the guests of a domain hold after loading
 * it with the index, however many they are.
 *
 * <p>An open-addressing table of block numbers, probed by the first 8 bytes of each block's SHA-256
 * (uniform already, so not mixed further); two blocks count as one only if all 32 bytes of their
 * digests are equal: the probe key only filters. The table is a power of two at least twice the
 * non-zero blocks, at most 16 bytes per block; an image of more than {@value #MAX_BLOCKS} non-zero
 * blocks (32 GiB) is not counted, to keep the count cheap.
 *
 * <p>Used by the summaries of {@code samepage index} and the demo's image boot.
 */
public final class DistinctBlocks {

    /** The most non-zero blocks counted: the table then takes 64 MiB. */
    public static final long MAX_BLOCKS = 1L << 23;

    private static final VarHandle FIRST_WORD = MethodHandles.byteArrayViewVarHandle(long[].class,
            ByteOrder.LITTLE_ENDIAN);

    private DistinctBlocks() {
    }

    /** The number of distinct non-zero blocks of {@code index}, or -1 if it has more than {@link #MAX_BLOCKS}. */
    public static long count(ImageIndex index) {
        long nonZero = index.blockCount() - index.zeroBlocks();
        if (nonZero > MAX_BLOCKS) {
            return -1;
        }
        int capacity = Integer.highestOneBit((int) Math.max(1, 2 * nonZero - 1)) << 1;
        int mask = capacity - 1;
        int[] table = new int[capacity];
        byte[] digest = new byte[ContentDigest.LENGTH];
        long distinct = 0;
        for (long b = 0; b < index.blockCount(); b++) {
            if (index.isZero(b)) {
                continue;
            }
            index.digest(b, digest, 0);
            int slot = (int) (long) FIRST_WORD.get(digest, 0) & mask;
            while (true) {
                int held = table[slot];
                if (held == 0) {
                    table[slot] = (int) b + 1;
                    distinct++;
                    break;
                }
                if (index.digestEquals(held - 1, digest, 0)) {
                    break;
                }
                slot = (slot + 1) & mask;
            }
        }
        return distinct;
    }
}
