package io.samepage.image;

import io.samepage.core.DedupEngine;
import io.samepage.core.PageInstaller;
import io.samepage.hashing.ContentDigest;
import io.samepage.hashing.Pages;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;

/**
 * Resolves the blocks of a {@link LoadBatch} into guest pages, in order: a zero block is noted (and in
 * direct mode filled), a resident block is mapped, and any other block is read into a fresh frame,
 * checked against its SHA-256 and installed ({@link PageInstaller#install}, which hashes and verifies
 * before it maps or registers anything). Stops at the first block that does not match or fails.
 *
 * <p>Reads are batched: a block that must be read is read together with the blocks after it in the
 * batch, one positional read into a buffer, and each frame is filled from the buffer. The read-ahead
 * starts at one block and doubles while consecutive blocks must be read, so a guest that finds almost
 * everything resident reads little more than the blocks it lacks.
 *
 * <p>Confined to one thread (its installer, reader and buffer); allocates nothing per block.
 */
final class BatchResolver implements AutoCloseable {

    private final ImageIndex index;
    private final PageInstaller installer;
    private final BlockReader reader;
    private final ByteBuffer buffer = ByteBuffer.allocateDirect(LoadBatch.MAX_BLOCKS * Pages.PAGE_SIZE);
    private final BufferFill fill = new BufferFill(MemorySegment.ofBuffer(buffer));
    private final byte[] digest = new byte[ContentDigest.LENGTH];

    BatchResolver(ImageIndex index, DedupEngine engine) {
        this.index = index;
        this.installer = engine.newPageInstaller();
        this.reader = new BlockReader(index.layout());
    }

    /** Fills a frame with one block of the buffer. */
    private static final class BufferFill implements PageInstaller.PageFill {
        private final MemorySegment buffer;
        private long offset;

        BufferFill(MemorySegment buffer) {
            this.buffer = buffer;
        }

        @Override
        public void fill(MemorySegment page) {
            MemorySegment.copy(buffer, offset, page, 0, Pages.PAGE_SIZE);
        }
    }

    /**
     * Resolves {@code batch}, setting each block's outcome; never throws for a block (a failure is the
     * block's {@link LoadBatch#FAILED} outcome), and leaves the blocks after a mismatch or failure
     * {@link LoadBatch#SKIPPED}. An {@link Error} is a block's failure too, so that a worker thread
     * always completes its batch.
     */
    void resolve(LoadBatch batch) {
        try {
            resolveBlocks(batch);
        } finally {
            installer.returnFramesAhead();
        }
    }

    /** The blocks of {@code batch} from its {@code i}-th on that are neither zero nor duplicates. */
    private int blocksToResolve(LoadBatch batch, int i) {
        int count = 0;
        for (; i < batch.blocks(); i++) {
            if (!index.isZero(batch.firstBlock() + i) && !batch.isDuplicate(i)) {
                count++;
            }
        }
        return count;
    }

    private void resolveBlocks(LoadBatch batch) {
        long first = batch.firstBlock();
        int blocks = batch.blocks();
        java.util.Arrays.fill(batch.outcome, 0, blocks, LoadBatch.SKIPPED);
        long bufferedFrom = -1;
        long bufferedTo = -1;
        int readAhead = 1;
        for (int i = 0; i < blocks && !batch.cancelled(); i++) {
            long b = first + i;
            long address = batch.addressOf(i);
            try {
                if (index.isZero(b)) {
                    if (!batch.staged()) {
                        batch.guest().fill(address, Pages.PAGE_SIZE, (byte) 0);
                    }
                    batch.outcome[i] = LoadBatch.ZERO;
                    continue;
                }
                if (batch.isDuplicate(i)) {
                    batch.outcome[i] = LoadBatch.DUPLICATE;
                    continue;
                }
                index.digest(b, digest, 0);
                if (installer.mapResident(batch.guest(), address, digest, 0)) {
                    batch.outcome[i] = LoadBatch.RESIDENT;
                    readAhead = 1;
                    continue;
                }
                if (b < bufferedFrom || b >= bufferedTo) {
                    if (bufferedFrom < 0) {
                        // The batch's first read: most of its blocks from here on will be read and installed.
                        installer.takeFramesAhead(blocksToResolve(batch, i));
                    }
                    int count = read(b, (int) Math.min(readAhead, batch.endBlock() - b));
                    bufferedFrom = b;
                    bufferedTo = b + count;
                    readAhead = count == 1 ? 2 : Math.min(LoadBatch.MAX_BLOCKS, readAhead * 2);
                }
                fill.offset = (b - bufferedFrom) << Pages.PAGE_SHIFT;
                if (!installer.install(batch.guest(), address, fill, digest, 0)) {
                    batch.outcome[i] = LoadBatch.MISMATCH;
                    return;
                }
                batch.outcome[i] = LoadBatch.READ;
            } catch (InternalError fault) {
                // A fault reading the mapped index, which the JVM raises only after the read and then went
                // on with what it left: a block before this one may have taken that as its digest or zero flag.
                batch.failWhole(fault);
                return;
            } catch (RuntimeException | Error e) {
                batch.fail(i, e);
                return;
            }
        }
    }

    /**
     * Reads {@code count} blocks from {@code block} on into the buffer, or, if that read fails, block
     * {@code block} alone, so that a read error or a file cut short fails the block it is in, never a
     * block before it; returns the blocks read.
     */
    private int read(long block, int count) {
        buffer.clear();
        try {
            reader.read(block, count, buffer);
            return count;
        } catch (ImageIndexException e) {
            if (count == 1) {
                throw e;
            }
            buffer.clear();
            reader.read(block, 1, buffer);
            return 1;
        }
    }

    @Override
    public void close() {
        reader.close();
    }
}
