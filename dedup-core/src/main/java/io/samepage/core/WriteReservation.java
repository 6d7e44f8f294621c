package io.samepage.core;

import io.samepage.hashing.Pages;

/**
 * The frames one write reserved in the pool before it changed a byte ({@link FramePool#tryReserve}),
 * taken page by page as it breaks sharing ({@link #take}): many of them are taken out of the reservation
 * in chunks through a {@link FramesAhead} (backed with memory a call or a few at a time, not a page fault
 * each), and {@link #close} gives back whatever was not taken. One reservation may serve the parts of a
 * write in several guests of one engine ({@link GuestChain}).
 *
 * <p>A frame counts as taken the moment it leaves the reservation, whatever becomes of it after (mapped
 * by its page, or freed again by a refused remap), so {@link #close} gives back exactly the frames still
 * reserved however the write ends: with an exception thrown between a page's take and the end of its
 * write too. Giving back one more would take it from another writer's reservation.
 *
 * <p>Confined to the writing thread, but for the one reservation of no frames that every write needing
 * none shares ({@link #of}): it has nothing to change.
 */
final class WriteReservation implements AutoCloseable {

    /** The reservation of a write that needs no frame (every page it writes is private): shared, so none is made per write. */
    private static final WriteReservation NONE = new WriteReservation(null, 0);

    private final FramePool pool;
    private final int reserved;
    /** Frames taken from the reservation itself, one at a time (not ahead). */
    private int taken;
    /** Null for a reservation too small to take frames ahead. */
    private final FramesAhead ahead;

    /** Over {@code reserved} frames the caller reserved in {@code pool}; for 0, the shared reservation of none. */
    static WriteReservation of(FramePool pool, int reserved) {
        return reserved == 0 ? NONE : new WriteReservation(pool, reserved);
    }

    private WriteReservation(FramePool pool, int reserved) {
        this.pool = pool;
        this.reserved = reserved;
        this.ahead = reserved >= FramePool.POPULATE_MIN_FRAMES
                ? new FramesAhead(Math.min(reserved, GuestWrites.POPULATE_CHUNK_FRAMES)) : null;
    }

    /**
     * A frame for a page's break: the next one taken ahead if any is left (taking more ahead first
     * where enough are still reserved), else one out of the reservation itself.
     *
     * @param zeroed true for a frame that reads as zeros; false for one whose bytes the caller overwrites
     *               (their value is unspecified)
     * @throws IllegalStateException if every frame reserved was taken already: the write miscounted the
     *                               frames it needs, and the pool's next one is another writer's
     */
    int take(boolean zeroed) {
        int left = reserved - taken - (ahead == null ? 0 : ahead.taken());
        if (ahead != null && ahead.isEmpty() && left >= FramePool.POPULATE_MIN_FRAMES) {
            ahead.allocateReserved(pool, Math.min(ahead.capacity(), left));
        }
        if (ahead != null && !ahead.isEmpty()) {
            int frame = ahead.take();
            if (zeroed) {
                // Its bytes are unspecified. Zeroed allocating nothing: a throw here would lose the frame, taken and not mapped.
                GuestWrites.fill(pool.memory(), FramePool.offsetOf(frame), Pages.PAGE_SIZE, (byte) 0);
            }
            return frame;
        }
        if (left == 0) {
            throw new IllegalStateException("a write took more frames than the " + reserved + " it reserved");
        }
        int frame = zeroed ? pool.allocateReserved() : pool.allocateReservedForOverwrite();
        taken++;
        return frame;
    }

    /** Gives the frames taken ahead and not handed out back to the pool, and the rest of the reservation. */
    @Override
    public void close() {
        try {
            if (ahead != null) {
                ahead.giveBack(pool);
            }
        } finally {
            if (reserved > 0) {
                pool.unreserve(reserved - taken - (ahead == null ? 0 : ahead.taken()));
            }
        }
    }
}
