package io.samepage.image;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import io.samepage.core.DedupEngine;
import io.samepage.core.EngineContext;
import io.samepage.core.Guest;
import io.samepage.core.PopulateRecording;
import io.samepage.hashing.Pages;
import io.samepage.linux.NativeMemory;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.junit.jupiter.api.io.TempDir;

/**
 * A first load through the index asks to back the frames of the blocks it reads in a few calls
 * ({@code PageInstaller.takeFramesAhead}, once per batch at its first read) instead of a page fault each,
 * on one loading thread and with workers alike, and still loads every byte. Each batch takes its own
 * frames, so with workers too every frame is asked for once: when batches resolved side by side asked
 * for the frames at the head of the free lists, they asked for the same frames, and the frames the
 * second batch then took went unpopulated.
 */
class ImageLoaderPopulateTest {

    private static final int PAGE = Pages.PAGE_SIZE;
    private static final int BLOCKS = 300;

    @TempDir
    Path temp;

    @ParameterizedTest
    @ValueSource(ints = {1, 2})
    void aFirstLoadAsksToPopulateAsManyFramesAsItReadsBlocks(int threads) throws IOException {
        Assumptions.assumeTrue(NativeMemory.available(), "frames are populated only where they go back to the OS");
        byte[] bytes = ImageIndexTest.randomBytes(BLOCKS * PAGE, 31);
        Path image = Files.write(temp.resolve("image"), bytes);
        PopulateRecording recording = new PopulateRecording();
        try (ImageIndex index = ImageIndex.build(image);
                DedupEngine engine = DedupEngine.create(new EngineContext().poolBytes(16L << 20).warmFrames(0)
                        .frameBacking(recording.factory()).hashSeed(1).conclude());
                ImageLoader loader = new ImageLoader(index, engine, threads)) {
            Guest guest = engine.createGuest(engine.createDomain("d"), "g", (long) BLOCKS * PAGE);
            LoadStats stats = loader.loadAll(guest, 0);
            assertEquals(BLOCKS, stats.blocksRead());
            assertEquals(BLOCKS, recording.framesAsked(), "frames asked for, one per block read");
            assertEquals(BLOCKS, recording.frames().cardinality(), "distinct frames asked for: none twice");
            assertEquals(BLOCKS, engine.framesInUse() - 1, "the guest holds the frames asked for, and the zero frame");
            byte[] back = new byte[bytes.length];
            guest.read(0, back, 0, back.length);
            assertArrayEquals(bytes, back);
        }
    }
}
