package io.samepage.core;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.samepage.hashing.Pages;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A domain with a zero frame of its own ({@code shareZeroFrameAcrossDomains(false)}) takes that frame
 * when it is created; if the take throws, here an {@link InternalError} from zeroing a warm frame whose
 * memory faults (a file mapping cut short under the pool), the engine is exactly as it was: no domain,
 * and every frame that was free still free (the reservation taken for it given back).
 */
class DomainCreationFailureTest {

    private static final int PAGE = Pages.PAGE_SIZE;
    private static final int FRAMES = 64;

    @Test
    void aZeroFrameWhoseTakeFaultsLeavesNoDomainAndEveryFrameFree(@TempDir Path dir) throws IOException {
        try (FileChannel file = FileChannel.open(dir.resolve("frames"), StandardOpenOption.CREATE_NEW,
                StandardOpenOption.READ, StandardOpenOption.WRITE);
                DedupEngine engine = DedupEngine.create(new EngineContext().poolBytes((long) FRAMES * PAGE).warmFrames(4)
                        .shareZeroFrameAcrossDomains(false)
                        .frameBacking(frames -> new FramePoolFailureTest.FileFrames(file, frames)).conclude())) {
            MergeDomain first = engine.createDomain("first");      // the pool's zero frame: nothing taken
            Guest guest = engine.createGuest(first, "g", 4L * PAGE);
            guest.write(0, new byte[] {7}, 0, 1);
            guest.fill(0, PAGE, (byte) 0);                          // its frame goes back, warm
            FramePool pool = engine.pool();
            assertTrue(pool.warmFrames() >= 1, "a warm frame for the next take");
            int available = pool.framesAvailable();
            long inUse = pool.framesInUse();

            file.truncate(PAGE);            // the zero frame still reads; every other frame faults
            assertThrows(InternalError.class, () -> engine.createDomain("second"));
            assertEquals(List.of(first), engine.domains(), "no domain was added");
            assertEquals(inUse, pool.framesInUse(), "frames in use");
            assertEquals(available, pool.framesAvailable(), "frames free and unreserved");

            file.write(ByteBuffer.allocate(1), (long) FRAMES * PAGE - 1);     // the frames read again
            MergeDomain second = engine.createDomain("second");
            assertEquals(inUse + 1, pool.framesInUse(), "the second domain's zero frame");
            byte[] read = new byte[PAGE];
            read[5] = 1;
            engine.createGuest(second, "h", PAGE).read(0, read, 0, PAGE);
            assertArrayEquals(new byte[PAGE], read, "a new guest of the second domain reads zeros");
        }
    }
}
