package io.samepage.image;

/**
 * What {@link ImageIndex#verify} found.
 *
 * @param layoutDifference     how the image's identity (size, modification time, files, change stamps)
 *                             differs from the index, or null if it matches
 * @param blocksCompared       blocks whose digests were compared
 * @param mismatchedBlocks     blocks whose content no longer matches the index; when the image's block
 *                             count changed, every block of the larger count (none was compared)
 * @param firstMismatchedBlock the first mismatched block, or -1 if none, or if the block counts differ
 */
public record Verification(String layoutDifference, long blocksCompared, long mismatchedBlocks,
        long firstMismatchedBlock) {

    /** True if the image is exactly what the index describes. */
    public boolean matches() {
        return layoutDifference == null && mismatchedBlocks == 0;
    }
}
