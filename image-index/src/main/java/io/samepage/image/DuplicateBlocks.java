package io.samepage.image;

import java.util.Arrays;

/**
 * For every block of an index, the nearest earlier block with the same SHA-256 digest. Worker threads
 * that load a range ahead of the loading thread leave such a block to it (it maps the frame the earlier
 * block installed), so two workers never read and install one content twice, and a load reads the same
 * blocks with any number of threads.
 *
 * <p>Two blocks have the same content only if all 32 bytes of their digests are equal ({@link DigestTable}).
 */
final class DuplicateBlocks {

    private DuplicateBlocks() {
    }

    /**
     * {@code previous[b]}: the nearest block before {@code b} with {@code b}'s digest, or -1 (also for
     * zero blocks); null if the index is too large for a {@link DigestTable}.
     */
    static int[] previous(ImageIndex index) {
        DigestTable table = DigestTable.of(index);
        if (table == null) {
            return null;
        }
        int[] previous = new int[(int) index.blockCount()];
        Arrays.fill(previous, -1);
        for (int b = 0; b < previous.length; b++) {
            if (!index.isZero(b)) {
                previous[b] = table.put(b);
            }
        }
        return previous;
    }
}
