package io.samepage.core;

import io.samepage.core.DedupException.Kind;
import java.util.concurrent.locks.StampedLock;

/**
 * {@code run=2}: gives every merged page (shared or zero-merged) a private copy again and empties the
 * unstable indexes. Memory use grows back to what it was without merging.
 *
 * <p>The frames it needs are reserved first, all at once, so a pool too small for them unmerges nothing:
 * {@code pages_sharing} plus the zero-merged pages, since each stable frame's last mapper takes the frame
 * back ({@link GuestWrites#unmergeInPlace}), plus one while a mapped guest's page is merged (its last
 * mapper copies, then frees the frame). Asking for a frame per merged page refused {@code run=2} on
 * every pool sized for the guests' pages alone, the daemon's default.
 *
 * <p>Thread safety: the scanner's thread only, holding its batch lock; each page under its stripe.
 */
final class UnmergeAll {

    private UnmergeAll() {
    }

    /**
     * Unmerges every live guest's merged pages.
     *
     * @throws DedupException {@link Kind#POOL_EXHAUSTED} if the pool has too few free frames (nothing
     *                        changed); {@link Kind#HOST_REFUSED} if the host refused a remap (the pages
     *                        unmerged before it stay unmerged, that page and the rest stay merged)
     */
    static void run(DedupEngine engine) {
        FramePool pool = engine.pool();
        EngineCounters counters = engine.counters();
        long needed = counters.pagesSharing() + counters.ksmZeroPages();
        for (Guest guest : engine.liveGuests()) {
            if (guest.isMapped() && guest.counters().mergingPages() > 0) {
                needed++;
                break;
            }
        }
        if (needed > Integer.MAX_VALUE || !pool.tryReserve((int) needed)) {
            throw new DedupException(Kind.POOL_EXHAUSTED, "host frame pool exhausted: unmerging every merged page needs "
                    + needed + " free frames, " + pool.framesAvailable() + " are free; nothing was unmerged");
        }
        int reserved = (int) needed;
        try {
            engine.clearUnstableIndexes();
            for (Guest guest : engine.liveGuests()) {
                for (int page = 0; page < guest.pageCount(); page++) {
                    StampedLock lock = guest.stripeOf(page);
                    long stamp = lock.writeLock();
                    try {
                        if (guest.isDestroyed() || !guest.isMerged(page) || guest.writes().unmergeInPlace(page)) {
                            continue;
                        }
                        if (reserved == 0 && !pool.tryReserve(1)) {    // merged meanwhile by an image load
                            throw new DedupException(Kind.POOL_EXHAUSTED, "host frame pool exhausted while unmerging guest "
                                    + guest.name() + " at page " + page + "; " + engine.pagesShared() + " frames are still shared");
                        }
                        reserved = Math.max(0, reserved - 1);
                        guest.writes().unmerge(page);
                    } finally {
                        lock.unlockWrite(stamp);
                    }
                }
            }
        } finally {
            pool.unreserve(reserved);
        }
    }
}
