package io.samepage.core;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.reflect.Field;
import java.util.concurrent.ConcurrentSkipListMap;
import org.junit.jupiter.api.Test;

/**
 * A failure whose clean-up throws the very same instance again reaches the caller as it is. Where the
 * JVM cannot make a new {@link OutOfMemoryError} it throws a preallocated one, so a clean-up that runs
 * out of heap after the failure did may throw the same object; {@link Throwable#addSuppressed} of an
 * instance to itself throws {@link IllegalArgumentException}, which took the failure's place. Here the
 * live guests' skip list fails to take a new mapped guest's entry, and the undoing destroy's
 * {@link PageMapping#unmapAll} throws that same error.
 */
class SameErrorTwiceTest {

    private static final long PAGE = 4096;

    @Test
    void aCreateWhoseUndoingThrowsItsOwnErrorAgainThrowsThatError() throws Exception {
        OutOfMemoryError once = new OutOfMemoryError("injected: one preallocated error, thrown twice");
        try (DedupEngine engine = DedupEngine.create(new EngineContext().poolBytes(8L << 20).conclude())) {
            MergeDomain domain = engine.createDomain("d");
            Field live = DedupEngine.class.getDeclaredField("guests");
            live.setAccessible(true);
            Field guests = LiveGuests.class.getDeclaredField("guests");
            guests.setAccessible(true);
            guests.set(live.get(engine), new ConcurrentSkipListMap<Long, Guest>() {
                @Override
                public Guest put(Long key, Guest value) {
                    throw once;
                }
            });
            boolean[] unmapCalled = {false};
            OutOfMemoryError thrown = assertThrows(OutOfMemoryError.class, () -> engine.createGuest(domain, "vm", 4 * PAGE,
                    (first, pages) -> new ForwardingMapping(first, pages) {
                        @Override
                        public void unmapAll() {
                            unmapCalled[0] = true;
                            throw once;
                        }
                    }));
            assertTrue(unmapCalled[0], "the undoing destroy reached the mapping");
            assertSame(once, thrown, "the creation's own error reaches the caller");
            assertArrayEquals(new Throwable[0], thrown.getSuppressed(), "nothing is attached to it, itself least");
        }
    }
}
