package io.samepage.image;

/**
 * What one load did.
 *
 * @param blocksRead   blocks read from the image and installed (each checked against its digest)
 * @param blocksMapped blocks whose content was already resident: mapped copy-on-write, not read
 * @param zeroBlocks   all-zero blocks, known from the index: mapped to the zero frame, not read
 * @param bytesNotRead bytes the load did not read thanks to the index: (mapped + zero) x 4096
 * @param loadNanos    wall time of the load
 */
public record LoadStats(long blocksRead, long blocksMapped, long zeroBlocks, long bytesNotRead, long loadNanos) {

    /** Blocks loaded. */
    public long blocks() {
        return blocksRead + blocksMapped + zeroBlocks;
    }

    /** The fraction of blocks read from disk, 0 to 1. */
    public double readFraction() {
        return blocks() == 0 ? 0 : (double) blocksRead / blocks();
    }
}
