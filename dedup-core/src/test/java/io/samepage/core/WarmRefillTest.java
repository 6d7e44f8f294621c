package io.samepage.core;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.samepage.hashing.Pages;
import io.samepage.linux.NativeMemory;
import java.lang.foreign.ValueLayout;
import java.util.BitSet;
import java.util.HashSet;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * {@link FramePool#replenishWarm}: which frames it takes, the accounts it keeps, and how it backs them
 * with memory (one {@link FrameBacking#populate} call per run of neighbouring frames, a hint whose
 * failure changes nothing). Only where frames go back to the operating system: elsewhere there is no
 * warm list to refill.
 */
class WarmRefillTest {

    @BeforeEach
    void framesGoBackToTheOs() {
        Assumptions.assumeTrue(NativeMemory.available(), "the warm list is refilled only where frames go back to the OS");
    }

    @Test
    void replenishingTakesOnlyDiscardedOrNeverUsedFramesEvenWhenWarmOnesAreAvailable() {
        // 15 allocatable frames, all taken; 4 freed stay warm. Available frames are all warm: nothing
        // is left to fault in, though the warm list has room for 4 more.
        try (FramePool pool = new FramePool(16L * Pages.PAGE_SIZE, 8)) {
            assertTrue(pool.tryReserve(15));
            int[] taken = new int[15];
            for (int i = 0; i < 15; i++) {
                taken[i] = pool.allocateReserved();
            }
            for (int i = 0; i < 4; i++) {
                pool.free(taken[i]);
            }
            assertEquals(0, pool.replenishWarm(8));
            assertEquals(4, pool.warmFrames());
            pool.free(taken[4]);
            pool.free(taken[5]);
            for (int i = 6; i < 15; i++) {
                pool.free(taken[i]);
            }
            // 8 warm now (the limit), 7 discarded: a refill has no room.
            assertEquals(0, pool.replenishWarm(8));
            assertTrue(pool.tryReserve(15));
            assertEquals(15, new HashSet<>(java.util.stream.IntStream.range(0, 15)
                    .map(i -> pool.allocateReserved()).boxed().toList()).size(), "every frame is handed out once");
            assertEquals(15, pool.framesInUse());
        }
    }

    @Test
    void replenishingFaultsFramesInUpToTheWarmLimitAndKeepsTheAccounts() {
        try (FramePool pool = new FramePool(64L * Pages.PAGE_SIZE, 8)) {
            assertEquals(5, pool.replenishWarm(5));
            assertEquals(3, pool.replenishWarm(100), "up to the warm limit of 8");
            assertEightWarmAndEveryFrameReadsAsZeros(pool);
        }
    }

    /**
     * Frames discarded in two runs are backed with one populate call per run, covering exactly the
     * frames the refill warms; no call covers a frame it does not warm.
     */
    @Test
    void theRefillPopulatesEachRunOfNeighbouringFramesWithOneCall() {
        PopulateRecording recording = new PopulateRecording();
        try (FramePool pool = new FramePool(64L * Pages.PAGE_SIZE, 8, recording.factory())) {
            // Frames 1..40 taken; 1..8 freed first fill the warm list (its limit), 11..14 and 21..24
            // freed next go back to the OS, and taking 8 frames again empties the warm list.
            assertTrue(pool.tryReserve(40));
            for (int i = 0; i < 40; i++) {
                pool.allocateReserved();
            }
            pool.freeAll(new int[] {1, 2, 3, 4}, 4);
            pool.freeAll(new int[] {5, 6, 7, 8}, 4);
            pool.freeAll(new int[] {11, 12, 13, 14, 21, 22, 23, 24}, 8);
            assertEquals(8, pool.warmFrames());
            assertTrue(pool.tryReserve(8));
            for (int i = 0; i < 8; i++) {
                pool.allocateReserved();                       // empties the warm list
            }
            recording.clear();
            assertEquals(8, pool.replenishWarm(8));
            BitSet discarded = new BitSet();
            discarded.set(11, 15);
            discarded.set(21, 25);
            assertEquals(discarded, recording.frames(), "the populated frames are the discarded ones");
            assertEquals(2, recording.calls(), () -> "one call per run, not " + recording.calls());
        }
    }

    /** A backing whose populate throws: the refill still warms every frame, zeroed and accounted for. */
    @Test
    void aPopulateThatFailsLeavesTheRefillAsWithout() {
        FrameBacking.Factory failing = ForwardingBacking.failingPopulate();
        try (FramePool pool = new FramePool(64L * Pages.PAGE_SIZE, 8, failing)) {
            assertEquals(8, pool.replenishWarm(8));
            assertEightWarmAndEveryFrameReadsAsZeros(pool);
        }
    }

    /** The 63-frame pool after a refill of 8: all warm, none in use, and every frame reads as zeros. */
    private static void assertEightWarmAndEveryFrameReadsAsZeros(FramePool pool) {
        assertEquals(8, pool.warmFrames());
        assertEquals(0, pool.framesInUse());
        assertEquals(63, pool.framesAvailable());
        assertTrue(pool.tryReserve(63));
        for (int i = 0; i < 63; i++) {
            int frame = pool.allocateReserved();
            assertEquals(0, pool.memory().get(ValueLayout.JAVA_LONG, FramePool.offsetOf(frame)));
        }
    }
}
