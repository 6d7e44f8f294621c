package io.samepage.hashing;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.Objects;

/**
 * Page-sized operations on memory segments: the page size, the zero-page test and page equality.
 *
 * <p>Both tests are full byte compares ({@link MemorySegment#mismatch(MemorySegment, long, long,
 * MemorySegment, long, long)}, which the JDK vectorizes) and allocate nothing. Thread safe.
 */
public final class Pages {

    /** The page size, 4 KiB, on every platform Samepage runs on. */
    public static final int PAGE_SIZE = 4096;

    /** log2 of {@link #PAGE_SIZE}. */
    public static final int PAGE_SHIFT = 12;

    /** One page of zeros; read-only so nothing can make it lie. */
    private static final MemorySegment ZERO_PAGE = Arena.global().allocate(PAGE_SIZE, PAGE_SIZE).asReadOnly();

    private Pages() {
    }

    /** True if every byte of the page at {@code offset} is zero. */
    public static boolean isZeroPage(MemorySegment memory, long offset) {
        checkPage(memory, offset);
        return MemorySegment.mismatch(memory, offset, offset + PAGE_SIZE, ZERO_PAGE, 0, PAGE_SIZE) < 0;
    }

    /** True if the two pages hold the same bytes: the only test that may justify a merge. */
    public static boolean equal(MemorySegment a, long aOffset, MemorySegment b, long bOffset) {
        checkPage(a, aOffset);
        checkPage(b, bOffset);
        return MemorySegment.mismatch(a, aOffset, aOffset + PAGE_SIZE, b, bOffset, bOffset + PAGE_SIZE) < 0;
    }

    /**
     * Checks that a whole page lies at {@code offset} inside {@code memory}.
     *
     * @throws IndexOutOfBoundsException naming the offset and the segment size if it does not
     */
    public static void checkPage(MemorySegment memory, long offset) {
        Objects.checkFromIndexSize(offset, PAGE_SIZE, memory.byteSize());
    }
}
