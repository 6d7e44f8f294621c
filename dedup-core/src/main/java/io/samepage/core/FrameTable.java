package io.samepage.core;

import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.util.Arrays;

/**
 * What each frame of a {@link FramePool} is doing: 12 bytes of metadata per frame in three primitive
 * arrays, no object per frame.
 * <ul>
 *   <li>{@code int[] refCounts}: mappers of the frame, read and written through a {@link VarHandle}
 *       (volatile reads, CAS). A free frame holds {@link #FREE}, so {@link #tryIncrementRef} can never
 *       revive it and the pool detects a double free.</li>
 *   <li>{@code int[] stableKeys}: the key (the fast hash folded to 32 bits) the stable index filed the
 *       frame under.</li>
 *   <li>{@code int[] next}: the stable index's bucket chain link while the frame is stable; the pool's
 *       free-list link while the frame is free. A frame is never both, so one array serves both.</li>
 * </ul>
 *
 * <p>Thread safety: the refcount methods are safe from any thread. {@link #stableKey},
 * {@link #setStableKey}, {@link #next} and {@link #setNext} are plain accesses: the stable index (a
 * domain's lock) or the pool's free-list lock, whichever owns the frame, synchronizes their callers.
 */
final class FrameTable {

    /** Refcount of a frame on a free list. */
    static final int FREE = -1;

    /** End of a chain or a free list; also the {@code next} of a frame in none. */
    static final int NO_FRAME = -1;

    /** Bytes of metadata per frame: a refcount, a stable key and a link. */
    static final int BYTES_PER_FRAME = 3 * Integer.BYTES;

    private static final VarHandle REF_COUNTS = MethodHandles.arrayElementVarHandle(int[].class);

    private final int[] refCounts;
    private final int[] stableKeys;
    private final int[] next;

    FrameTable(int frames) {
        refCounts = new int[frames];
        stableKeys = new int[frames];
        next = new int[frames];
        Arrays.fill(next, NO_FRAME);
    }

    /**
     * The Java heap a pool of {@code frames} takes for its tables: this table's three ints a frame, and
     * the free lists' bit a frame ({@link FreeLists}).
     */
    static long heapBytes(long frames) {
        return frames * 3 * Integer.BYTES + (frames + 63) / 64 * Long.BYTES;
    }

    /** The frame's refcount, a volatile read; {@link #FREE} while the frame is free. */
    int refCount(int frame) {
        return (int) REF_COUNTS.getVolatile(refCounts, frame);
    }

    /** Sets the frame's refcount, a volatile write. */
    void setRefCount(int frame, int value) {
        REF_COUNTS.setVolatile(refCounts, frame, value);
    }

    /**
     * Adds a reference if the frame still has one: the way to share a frame found in an index, which may
     * concurrently drop to zero and be freed. A CAS loop.
     *
     * @return true if incremented; false if the refcount was 0 or the frame is free
     */
    boolean tryIncrementRef(int frame) {
        int count;
        do {
            count = (int) REF_COUNTS.getVolatile(refCounts, frame);
            if (count <= 0) {
                return false;
            }
        } while (!REF_COUNTS.compareAndSet(refCounts, frame, count, count + 1));
        return true;
    }

    /** Atomically adds one reference; returns the new refcount. */
    int incrementRef(int frame) {
        return (int) REF_COUNTS.getAndAdd(refCounts, frame, 1) + 1;
    }

    /**
     * Drops one reference unless the refcount is {@code limit} or more, then nothing changes: a CAS loop.
     *
     * @return the new refcount; -1 if nothing was dropped
     */
    int tryDecrementRefBelow(int frame, int limit) {
        int count;
        do {
            count = (int) REF_COUNTS.getVolatile(refCounts, frame);
            if (count >= limit) {
                return -1;
            }
        } while (!REF_COUNTS.compareAndSet(refCounts, frame, count, count - 1));
        return count - 1;
    }

    /** Atomically drops one reference; the caller that takes it to 0 frees the frame. Returns the new refcount. */
    int decrementRef(int frame) {
        return (int) REF_COUNTS.getAndAdd(refCounts, frame, -1) - 1;
    }

    /**
     * Sets the refcount to {@link #FREE}, whatever it was.
     *
     * @throws IllegalStateException if it already was (a double free); nothing changes
     */
    void markFree(int frame) {
        int count;
        do {
            count = (int) REF_COUNTS.getVolatile(refCounts, frame);
            if (count == FREE) {
                throw new IllegalStateException("cannot free frame " + frame + ": it is already free "
                        + "(double free)");
            }
        } while (!REF_COUNTS.compareAndSet(refCounts, frame, count, FREE));
    }

    /** The key the stable index filed the frame under. A plain read. */
    int stableKey(int frame) {
        return stableKeys[frame];
    }

    /** Sets the stable-index key. A plain write. */
    void setStableKey(int frame, int key) {
        stableKeys[frame] = key;
    }

    /** The next frame in the frame's chain or free list, {@link #NO_FRAME} at the end. A plain read. */
    int next(int frame) {
        return next[frame];
    }

    /** Links the frame to {@code next}. A plain write. */
    void setNext(int frame, int next) {
        this.next[frame] = next;
    }

    /** Bytes of the three arrays. */
    long metadataBytes() {
        return (long) refCounts.length * BYTES_PER_FRAME;
    }
}
