package io.samepage.image;

import io.samepage.core.Guest;
import io.samepage.hashing.Pages;

/**
 * One load of an {@link ImageLoader}: the load its workers' batches belong to ({@link LoadWorkers#startLoad}),
 * so that a throwable a worker meets while it holds no batch is told apart by the load it belongs to, and
 * what the loading thread needs to name that load once it has ended, or to empty its range when it fails
 * with CORRUPT. Made, written and read by the loading thread; workers only pass it on.
 */
final class LoadRecord {

    private final Guest guest;
    private final long address;
    private final long firstBlock;
    private final long blocks;
    /** Whether the load failed with CORRUPT: its range was emptied, and its caller told to load it again. */
    private boolean failedCorrupt;

    /** The load of {@code blocks} blocks from {@code firstBlock} on into {@code guest} from {@code address} on. */
    LoadRecord(Guest guest, long address, long firstBlock, long blocks) {
        this.guest = guest;
        this.address = address;
        this.firstBlock = firstBlock;
        this.blocks = blocks;
    }

    /**
     * Records that the load failed with CORRUPT, and returns {@code corrupt} once every page of its range
     * reads zeros again, or with the guest's refusal to empty them as suppressed. A block the load mapped
     * may have been resolved with what a faulting read of the index left (a digest that is not its own maps
     * a resident frame of other bytes, a zero flag that is not its own leaves it zero), and nothing shows
     * which: so none of them is kept. {@link Guest#fill} with zeros gives each page's frame back (a software
     * guest's page maps the zero frame again; a mapped guest's private page goes back in place, a shared one
     * takes a zeroed frame).
     */
    ImageIndexException emptied(ImageIndexException corrupt) {
        failedCorrupt = true;
        try {
            guest.fill(address, blocks << Pages.PAGE_SHIFT, (byte) 0);
        } catch (RuntimeException | Error refused) {
            corrupt.addSuppressed(refused);
        }
        return corrupt;
    }

    /**
     * The error with which a later load reports {@code stray}, a throwable a worker met while it held no
     * batch, after its last batch of this load, and that this load did not report (it surfaced after the
     * load took its strays); null if {@code stray} says nothing about the pages this load left. Only a
     * fault in a memory access can: the JVM raises it (an InternalError) late, after the read that met it,
     * which then went on with what it left, so a digest or zero flag the batch read may not have been the
     * index's. And only if this load left pages: one that failed with CORRUPT left its range reading zeros.
     *
     * @param origin the index's name, which the message starts with
     */
    ImageIndexException lateFault(String origin, Throwable stray) {
        if (!(stray instanceof InternalError) || failedCorrupt) {
            return null;
        }
        return new ImageIndexException(ImageIndexException.Kind.IO, origin + ": a worker met a fault in a memory"
                + " access after the load of guest " + guest.name() + "'s blocks [" + firstBlock + ", "
                + (firstBlock + blocks) + ") at 0x" + Long.toHexString(address) + " had ended, so that load may have"
                + " mapped bytes that are not the image's: load those blocks again; this load changed nothing", stray);
    }
}
