package io.samepage.image;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.samepage.core.DedupEngine;
import io.samepage.core.EngineContext;
import io.samepage.core.FrameBacking;
import io.samepage.core.FramePool;
import io.samepage.core.Guest;
import io.samepage.hashing.Pages;
import io.samepage.linux.NativeMemory;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.junit.jupiter.api.io.TempDir;

/**
 * A first load through the index asks to back the frames of the blocks it reads in a few calls
 * ({@code PageInstaller.populateAhead}, once per batch at its first read) instead of a page fault each,
 * on one loading thread and with workers alike, and still loads every byte. With workers the calls of
 * batches resolved side by side may cover the same frames, so the count is of frames asked for.
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
        AtomicLong populated = new AtomicLong();
        FrameBacking.Factory counting = frames -> new Counting(FrameBacking.anonymous().create(frames), populated);
        try (ImageIndex index = ImageIndex.build(image);
                DedupEngine engine = DedupEngine.create(new EngineContext().poolBytes(16L << 20).warmFrames(0)
                        .frameBacking(counting).hashSeed(1).conclude());
                ImageLoader loader = new ImageLoader(index, engine, threads)) {
            Guest guest = engine.createGuest(engine.createDomain("d"), "g", (long) BLOCKS * PAGE);
            LoadStats stats = loader.loadAll(guest, 0);
            assertEquals(BLOCKS, stats.blocksRead());
            assertTrue(populated.get() >= BLOCKS, () -> populated.get() + " frames populated for " + BLOCKS
                    + " blocks read");
            byte[] back = new byte[bytes.length];
            guest.read(0, back, 0, back.length);
            assertArrayEquals(bytes, back);
        }
    }

    /** The anonymous backing, counting the frames it is asked to populate. */
    private record Counting(FrameBacking inner, AtomicLong populated) implements FrameBacking {
        @Override
        public MemorySegment region() {
            return inner.region();
        }

        @Override
        public boolean releasesMemory() {
            return inner.releasesMemory();
        }

        @Override
        public void populate(int first, int count) {
            populated.addAndGet(count);
            inner.populate(first, count);
        }

        @Override
        public void release(int frame) {
            inner.release(frame);
        }

        @Override
        public void release(int[] frames, int count) {
            inner.release(frames, count);
        }

        @Override
        public void close() {
            inner.close();
        }
    }
}
