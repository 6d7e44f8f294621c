package io.samepage.core;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.samepage.hashing.Pages;
import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A frame whose memory faults when a free zeroes it in place (its backing's release failed first, then the
 * write faulted: a file mapping cut short under it) cannot be trusted to read as zeros, so it stays off
 * every list for good: that is withheld, and counted where an embedder sees it ({@link
 * FramePool#framesWithheld}). Before, it was only "counted in use", told apart from a leak by nothing.
 */
class FaultingFreeWithheldTest {

    private static final int PAGE = Pages.PAGE_SIZE;
    private static final int FRAMES = 8;

    @Test
    void aFrameWhoseMemoryFaultsWhenFreedIsWithheldCounted(@TempDir Path dir) throws IOException {
        try (FileChannel file = FileChannel.open(dir.resolve("frames"), StandardOpenOption.CREATE_NEW,
                StandardOpenOption.READ, StandardOpenOption.WRITE);
                FramePool pool = new FramePool((long) FRAMES * PAGE, 0,
                        frames -> new FramePoolFailureTest.FileFrames(file, frames))) {
            assertTrue(pool.tryReserve(1));
            int frame = pool.allocateReserved();
            file.truncate(PAGE);                // the zero frame still reads; every other frame faults
            assertThrows(InternalError.class, () -> pool.free(frame));
            assertEquals(1, pool.framesWithheld(), "the frame is withheld, counted");
            assertEquals(1, pool.framesInUse(), "and in use, on no list");
        }
    }
    /**
     * A batch free ({@link FramePool#freeAll}) whose release fails and whose zeroing in place then faults at
     * some frames withholds those alone: the frames zeroed beside them go back to the pool. Before,
     * the fault left every frame of the batch marked free yet on no list, uncounted.
     */
    @Test
    void aBatchFreeWithholdsOnlyTheFramesWhoseMemoryFaults(@TempDir Path dir) throws IOException {
        try (FileChannel file = FileChannel.open(dir.resolve("frames"), StandardOpenOption.CREATE_NEW,
                StandardOpenOption.READ, StandardOpenOption.WRITE);
                FramePool pool = new FramePool((long) FRAMES * PAGE, 0,
                        frames -> new FramePoolFailureTest.FileFrames(file, frames))) {
            assertTrue(pool.tryReserve(4));
            int[] frames = new int[4];
            for (int i = 0; i < frames.length; i++) {
                frames[i] = pool.allocateReserved();
            }
            java.util.Arrays.sort(frames);
            // The file cut short where the third frame taken starts: the first two still read, the last two fault.
            file.truncate((long) frames[2] * PAGE);
            assertThrows(InternalError.class, () -> pool.freeAll(frames.clone(), frames.length));
            assertEquals(2, pool.framesWithheld(), "the two frames whose memory faults are withheld, counted");
            assertEquals(2, pool.framesInUse(), "the two withheld are in use; the others are free");
            assertTrue(pool.tryReserve(FRAMES - 3), "every other frame can be had again");
        }
    }
}
