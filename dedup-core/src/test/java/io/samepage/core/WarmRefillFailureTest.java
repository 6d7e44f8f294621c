package io.samepage.core;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.samepage.hashing.Pages;
import io.samepage.linux.NativeMemory;
import java.util.BitSet;
import java.util.concurrent.atomic.AtomicBoolean;
import org.agrona.LangUtil;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * A warm-list refill ({@link FramePool#replenishWarm}) that throws part way, an {@link Error} included
 * (the backing's populate out of memory, a fault writing a frame), puts the frames it took back where
 * a taker finds them. Before, they stayed counted in flight to the warm list and on no list: a taker
 * that found only them waited for them for ever, on a guest's write path.
 */
class WarmRefillFailureTest {

    private static final int FRAMES = 64;

    @Test
    @Timeout(value = 60, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)    // the old code never returns
    void aRefillThatThrowsLeavesEveryFrameToBeTakenOnce() {
        aRefillThatThrowsLeavesEveryFrameToBeTakenOnce(new OutOfMemoryError("injected: populate"));
    }

    /**
     * The same for a checked exception a backing throws undeclared (one written in Kotlin, say): the
     * refill put the frames back only for unchecked exceptions and errors.
     */
    @Test
    @Timeout(value = 60, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)    // the old code never returns
    void aRefillThatThrowsACheckedExceptionLeavesEveryFrameToBeTakenOnce() {
        aRefillThatThrowsLeavesEveryFrameToBeTakenOnce(new java.io.IOException("injected: populate"));
    }

    private static void aRefillThatThrowsLeavesEveryFrameToBeTakenOnce(Throwable injected) {
        Assumptions.assumeTrue(NativeMemory.available(), "the warm list is refilled only where frames go back to the OS");
        AtomicBoolean armed = new AtomicBoolean();
        FrameBacking.Factory backing = frames -> new ForwardingBacking(frames) {
            @Override
            public void populate(int first, int count) {
                if (armed.getAndSet(false)) {
                    LangUtil.rethrowUnchecked(injected);
                }
                super.populate(first, count);
            }
        };
        try (FramePool pool = new FramePool((long) FRAMES * Pages.PAGE_SIZE, 16, backing)) {
            int available = pool.framesAvailable();
            armed.set(true);
            assertSame(injected, assertThrows(injected.getClass(), () -> pool.replenishWarm(16)));
            assertEquals(available, pool.framesAvailable(), "a refill reserves nothing");
            assertEquals(0, pool.warmFrames());

            assertTrue(pool.tryReserve(available));
            BitSet taken = new BitSet();
            for (int i = 0; i < available; i++) {
                int frame = pool.allocateReserved();
                assertTrue(!taken.get(frame), "frame " + frame + " was handed out twice");
                taken.set(frame);
            }
            assertEquals(available, taken.cardinality());
            assertEquals(available, pool.framesInUse());
        }
    }
}
