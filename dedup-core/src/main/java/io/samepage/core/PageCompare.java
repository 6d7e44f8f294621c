package io.samepage.core;

import io.samepage.hashing.Pages;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.concurrent.atomic.LongAdder;

/**
 * Full compares of two 4 KiB pages of the frame pool, counted: the only test of equality the engine
 * trusts, and the work a flood of colliding hashes would multiply, so tests and reports count it
 * instead of timing it.
 *
 * <p>Thread safety: safe from any thread; the count is a {@link LongAdder}.
 */
final class PageCompare {

    private final MemorySegment memory;
    private final LongAdder compares = new LongAdder();

    PageCompare(MemorySegment memory) {
        this.memory = memory;
    }

    /** True if the 4096 bytes at {@code a} and at {@code b} are equal. */
    boolean equal(long a, long b) {
        compares.increment();
        return Pages.equal(memory, a, memory, b);
    }

    /** Orders the pages at {@code a} and {@code b} as memcmp does: unsigned bytes, the first that differs. */
    int order(long a, long b) {
        compares.increment();
        long at = MemorySegment.mismatch(memory, a, a + Pages.PAGE_SIZE, memory, b, b + Pages.PAGE_SIZE);
        if (at < 0) {
            return 0;
        }
        return Byte.compareUnsigned(memory.get(ValueLayout.JAVA_BYTE, a + at), memory.get(ValueLayout.JAVA_BYTE, b + at));
    }

    /** True if the page at {@code a} is all zeros (one compare, against nothing). */
    boolean isZero(long a) {
        compares.increment();
        return Pages.isZeroPage(memory, a);
    }

    long count() {
        return compares.sum();
    }
}
