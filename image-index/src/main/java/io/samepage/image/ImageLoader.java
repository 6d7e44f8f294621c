package io.samepage.image;

import io.samepage.core.DedupEngine;
import io.samepage.core.Guest;
import io.samepage.core.PageInstaller;
import io.samepage.hashing.ContentDigest;
import io.samepage.hashing.Pages;
import java.nio.ByteBuffer;

/**
 * Loads blocks of an indexed image into guests. For each block:
 * <ul>
 *   <li>all zeros (the index says so): the page maps the zero frame; nothing is read;</li>
 *   <li>content resident in the guest's merge domain (same SHA-256): the page maps that frame
 *       copy-on-write; nothing is read;</li>
 *   <li>otherwise the block is read straight into a fresh frame, its SHA-256 is checked against the
 *       index, and only then is it mapped and registered as resident. A mismatch means the image
 *       changed since the index was built: the load fails naming the block and the file, and the
 *       block is never installed.</li>
 * </ul>
 * Identity is always the SHA-256 digest, never the fast hash.
 *
 * <p>Thread safety: confined to one thread (it holds an open-file cache and a {@link PageInstaller});
 * use one loader per loading thread. Close it to close the image's files.
 */
public final class ImageLoader implements AutoCloseable {

    private final ImageIndex index;
    private final PageInstaller installer;
    private final BlockReader reader;
    private final byte[] digest = new byte[ContentDigest.LENGTH];

    /**
     * @param index  an index bound to its image ({@link ImageIndex#open(java.nio.file.Path, java.nio.file.Path)}
     *               or {@link ImageIndex#build})
     * @param engine the engine whose guests it loads into
     */
    public ImageLoader(ImageIndex index, DedupEngine engine) {
        if (index.layout().root() == null) {
            throw new IllegalArgumentException("the index " + index.origin()
                    + " is not bound to its image: open it with ImageIndex.open(index, source)");
        }
        this.index = index;
        this.installer = engine.newPageInstaller();
        this.reader = new BlockReader(index.layout());
    }

    /** Loads the whole image into {@code guest} at {@code guestAddress}. */
    public LoadStats loadAll(Guest guest, long guestAddress) {
        return load(guest, guestAddress, 0, index.blockCount());
    }

    /**
     * Loads blocks {@code [firstBlock, firstBlock + blocks)} into {@code guest} from {@code guestAddress}
     * (page aligned) on.
     *
     * @throws ImageIndexException BLOCK_MISMATCH if a block read does not match the index (the blocks
     *                             before it stay loaded, this one and those after are not), IO if the
     *                             image cannot be read
     * @throws io.samepage.core.DedupException if the range does not fit the guest or the pool is exhausted
     */
    public LoadStats load(Guest guest, long guestAddress, long firstBlock, long blocks) {
        java.util.Objects.checkFromIndexSize(firstBlock, blocks, index.blockCount());
        long start = System.nanoTime();
        long read = 0;
        long mapped = 0;
        long zero = 0;
        for (long b = firstBlock; b < firstBlock + blocks; b++) {
            long address = guestAddress + ((b - firstBlock) << Pages.PAGE_SHIFT);
            if (index.isZero(b)) {
                guest.fill(address, Pages.PAGE_SIZE, (byte) 0);
                zero++;
                continue;
            }
            index.digest(b, digest, 0);
            if (installer.mapResident(guest, address, digest, 0)) {
                mapped++;
                continue;
            }
            long block = b;
            boolean matched = installer.install(guest, address, page -> {
                ByteBuffer into = page.asByteBuffer();
                reader.read(block, 1, into);
            }, digest, 0);
            if (!matched) {
                ImageLayout layout = index.layout();
                ImageLayout.Extent extent = layout.extents().get(layout.extentOfBlock(b));
                throw new ImageIndexException(ImageIndexException.Kind.BLOCK_MISMATCH, layout.pathOf(extent)
                        + ": block " + b + " (byte " + ((b << Pages.PAGE_SHIFT) - extent.imageOffset())
                        + " of the file) does not match its digest in " + index.origin()
                        + "; the image changed since the index was built: rebuild the index (--rebuild)");
            }
            read++;
        }
        return new LoadStats(read, mapped, zero, (mapped + zero) << Pages.PAGE_SHIFT, System.nanoTime() - start);
    }

    /**
     * Loads blocks without the index, as a guest without Samepage would: read every block and write it
     * into the guest. The reference the index is measured against.
     */
    public static LoadStats loadWithoutIndex(ImageLayout layout, Guest guest, long guestAddress) {
        long start = System.nanoTime();
        ByteBuffer buffer = ByteBuffer.allocateDirect(IndexBuilder.RUN_BLOCKS * Pages.PAGE_SIZE);
        java.lang.foreign.MemorySegment segment = java.lang.foreign.MemorySegment.ofBuffer(buffer);
        long blocks = layout.blockCount();
        try (BlockReader reader = new BlockReader(layout)) {
            for (long b = 0; b < blocks; ) {
                int run = reader.runLength(b, IndexBuilder.RUN_BLOCKS);
                buffer.clear();
                reader.read(b, run, buffer);
                guest.write(guestAddress + (b << Pages.PAGE_SHIFT), segment.asSlice(0, (long) run << Pages.PAGE_SHIFT));
                b += run;
            }
        }
        return new LoadStats(blocks, 0, 0, 0, System.nanoTime() - start);
    }

    @Override
    public void close() {
        reader.close();
    }
}
