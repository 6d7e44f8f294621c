package io.samepage.image;

import io.samepage.hashing.ContentDigest;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.nio.ByteOrder;
import java.util.Arrays;

/**
 * For every block of an index, the nearest earlier block with the same SHA-256 digest. Worker threads
 * that load a range ahead of the loading thread leave such a block to it (it maps the frame the earlier
 * block installed), so two workers never read and install one content twice, and a load reads the same
 * blocks with any number of threads.
 *
 * <p>The same open-addressing table as {@link DistinctBlocks}: probed by the first 8 bytes of the
 * digest, equal only if all 32 bytes are.
 */
final class DuplicateBlocks {

    private static final VarHandle FIRST_WORD = MethodHandles.byteArrayViewVarHandle(long[].class,
            ByteOrder.LITTLE_ENDIAN);

    private DuplicateBlocks() {
    }

    /**
     * {@code previous[b]}: the nearest block before {@code b} with {@code b}'s digest, or -1 (also for
     * zero blocks); null if the index has more than {@link DistinctBlocks#MAX_BLOCKS} non-zero blocks.
     */
    static int[] previous(ImageIndex index) {
        long nonZero = index.blockCount() - index.zeroBlocks();
        if (nonZero > DistinctBlocks.MAX_BLOCKS || index.blockCount() > Integer.MAX_VALUE) {
            return null;
        }
        int capacity = Integer.highestOneBit((int) Math.max(1, 2 * nonZero - 1)) << 1;
        int mask = capacity - 1;
        int[] table = new int[capacity];
        int[] previous = new int[(int) index.blockCount()];
        Arrays.fill(previous, -1);
        byte[] digest = new byte[ContentDigest.LENGTH];
        for (int b = 0; b < previous.length; b++) {
            if (index.isZero(b)) {
                continue;
            }
            index.digest(b, digest, 0);
            int slot = (int) (long) FIRST_WORD.get(digest, 0) & mask;
            while (true) {
                int held = table[slot];
                if (held == 0) {
                    table[slot] = b + 1;
                    break;
                }
                if (index.digestEquals(held - 1, digest, 0)) {
                    previous[b] = held - 1;
                    table[slot] = b + 1;
                    break;
                }
                slot = (slot + 1) & mask;
            }
        }
        return previous;
    }
}
