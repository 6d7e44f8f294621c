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
}
