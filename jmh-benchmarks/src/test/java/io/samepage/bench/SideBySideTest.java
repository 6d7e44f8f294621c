package io.samepage.bench;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Parts that throw one and the same throwable: that throwable is thrown, as it is. Once the JVM has used
 * up its four preallocated {@link OutOfMemoryError}s with a stack trace, every thread whose allocation
 * finds the heap full gets one shared instance, so parts running out of heap side by side throw the same
 * object; {@link Throwable#addSuppressed} of it to itself threw {@link IllegalArgumentException} instead.
 */
class SideBySideTest {

    @Test
    @Timeout(value = 60, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
    void partsThatThrowOneErrorThrowThatError() {
        OutOfMemoryError shared = new OutOfMemoryError("Java heap space (test: one instance, as the JVM's own)");
        AtomicInteger threw = new AtomicInteger();
        OutOfMemoryError thrown = assertThrows(OutOfMemoryError.class, () -> SideBySide.run(3, index -> {
            threw.incrementAndGet();
            throw shared;
        }));
        assertSame(shared, thrown);
        assertArrayEquals(new Throwable[0], thrown.getSuppressed(), "nothing is attached to it, itself least");
        assertEquals(3, threw.get(), "every part ran and threw");
    }
}
