package io.samepage.image;

/**
 * Counts an image's distinct non-zero blocks from its index: the frames one copy of the image takes
 * once every duplicate block maps one frame, which is what the guests of a domain hold after loading
 * it with the index, however many they are.
 *
 * <p>Two blocks count as one only if all 32 bytes of their SHA-256 digests are equal ({@link
 * DigestTable}, at most 16 bytes per block). An index of more than {@value #MAX_BLOCKS} non-zero blocks
 * (32 GiB) is not counted, to keep the count cheap, nor one of more than {@link Integer#MAX_VALUE}
 * blocks (8 TiB, zero blocks included).
 *
 * <p>Used by the summaries of {@code samepage index} and the demo's image boot.
 */
public final class DistinctBlocks {

    /** The most non-zero blocks counted: the table then takes 64 MiB. */
    public static final long MAX_BLOCKS = 1L << 23;

    private DistinctBlocks() {
    }

    /** The number of distinct non-zero blocks of {@code index}, or -1 if it is too large to count (see above). */
    public static long count(ImageIndex index) {
        DigestTable table = DigestTable.of(index);
        if (table == null) {
            return -1;
        }
        long distinct = 0;
        for (int b = 0; b < index.blockCount(); b++) {
            if (!index.isZero(b) && table.put(b) < 0) {
                distinct++;
            }
        }
        return distinct;
    }
}
