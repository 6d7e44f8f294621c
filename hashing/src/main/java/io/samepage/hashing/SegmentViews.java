package io.samepage.hashing;

import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * Reusable {@link ByteBuffer} views of one segment, for JDK and library hash functions that take a
 * {@code ByteBuffer}. Making a view per page would allocate per page; this keeps one view per 1 GiB
 * window of the last segment seen (compared by identity, so a segment of a closed arena is never
 * reused by mistake). Windows overlap by one page, so every page lies wholly inside the window of its
 * first byte.
 *
 * <p>Single threaded: callers move the views' position and limit.
 */
final class SegmentViews {

    private static final int WINDOW_SHIFT = 30;
    private static final long WINDOW = 1L << WINDOW_SHIFT;

    private MemorySegment segment;
    private ByteBuffer[] windows;

    /** The view that holds the page at {@code offset}; index it with {@link #positionOf}. */
    ByteBuffer viewOf(MemorySegment memory, long offset) {
        if (memory != segment) {
            // The table first, then the segment it is for: a table that cannot be made (an OutOfMemoryError)
            // leaves the last segment's, which the next call does not take for this one's.
            windows = new ByteBuffer[(int) ((memory.byteSize() + WINDOW - 1) >>> WINDOW_SHIFT) + 1];
            segment = memory;
        }
        int index = (int) (offset >>> WINDOW_SHIFT);
        ByteBuffer view = windows[index];
        if (view == null) {
            long start = (long) index << WINDOW_SHIFT;
            long length = Math.min(memory.byteSize() - start, WINDOW + Pages.PAGE_SIZE);
            // Little-endian: lz4-java's XXH64 otherwise duplicates a big-endian view on every call
            // (ByteBufferUtils.inLittleEndianOrder), 64 bytes per page unless escape analysis saves it.
            view = memory.asSlice(start, length).asByteBuffer().order(ByteOrder.LITTLE_ENDIAN);
            windows[index] = view;
        }
        return view;
    }

    /** Where the page at {@code offset} starts inside its window's view. */
    static int positionOf(long offset) {
        return (int) (offset & (WINDOW - 1));
    }
}
