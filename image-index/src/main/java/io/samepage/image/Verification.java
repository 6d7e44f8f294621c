package io.samepage.image;

/**
 * What {@link ImageIndex#verify} found.
 *
 * @param layoutDifference     how the image's identity (size, modification time, files) differs from
 *                             the index, or null if it matches
 * @param blocksCompared       blocks whose digests were compared
 * @param mismatchedBlocks     blocks whose content no longer matches the index
 * @param firstMismatchedBlock the first of those, or -1
 */
public record Verification(String layoutDifference, long blocksCompared, long mismatchedBlocks,
        long firstMismatchedBlock) {

    /** True if the image is exactly what the index describes. */
    public boolean matches() {
        return layoutDifference == null && mismatchedBlocks == 0;
    }
}
