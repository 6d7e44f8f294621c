package io.samepage.core;

/**
 * The frames one write reserved in the pool before it changed a byte ({@link FramePool#tryReserve}),
 * spent page by page as it breaks sharing: many of them are taken out of the reservation in chunks
 * through a {@link FramesAhead} (backed with memory a call or a few at a time, not a page fault each),
 * and {@link #close} gives back whatever was not spent. One reservation may serve the parts of a write
 * in several guests of one engine ({@link GuestChain}).
 *
 * <p>Confined to the writing thread.
 */
final class WriteReservation implements AutoCloseable {

    private final FramePool pool;
    private final int reserved;
    /** Frames taken from the reservation itself (not ahead), or that went back to the pool from it. */
    private int used;
    private final FramesAhead ahead;

    /** Over {@code reserved} frames the caller reserved in {@code pool}. */
    WriteReservation(FramePool pool, int reserved) {
        this.pool = pool;
        this.reserved = reserved;
        this.ahead = reserved >= FramePool.POPULATE_MIN_FRAMES
                ? new FramesAhead(Math.min(reserved, GuestWrites.POPULATE_CHUNK_FRAMES)) : null;
    }

    /**
     * The frames taken ahead for the next page, taken now if none is left and enough are still reserved;
     * null for a write that takes none ahead.
     */
    FramesAhead ahead() {
        if (ahead != null && ahead.isEmpty()) {
            int stillReserved = reserved - used - ahead.taken();
            if (stillReserved >= FramePool.POPULATE_MIN_FRAMES) {
                ahead.allocateReserved(pool, Math.min(ahead.capacity(), stillReserved));
            }
        }
        return ahead;
    }

    /** A page took {@code frames} (0 or 1) from the reservation itself. */
    void spent(int frames) {
        used += frames;
    }

    /** A page's break was refused; the frame it took from the reservation, if it took one, went back to the pool. */
    void refused(boolean fromReservation) {
        if (fromReservation) {
            used++;
        }
    }

    /** Gives the frames taken ahead and not handed out back to the pool, and the rest of the reservation. */
    @Override
    public void close() {
        if (ahead != null) {
            ahead.giveBack(pool);
        }
        pool.unreserve(reserved - used - (ahead == null ? 0 : ahead.taken()));
    }
}
