package io.samepage.daemon;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.samepage.core.EngineContext;
import io.samepage.core.EngineCounters;
import io.samepage.host.GuestSketch;
import io.samepage.host.PageDigestEstimator;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@link SourceEstimate} against the exact engine ({@link SourceScan}) on the same dumps: on files that
 * settle, the estimate's counters are the engine's. A failure names the seed; {@code -Dsamepage.seed=N}
 * replays it.
 */
class SourceEstimateTest {

    private static final int PAGE = 4096;
    private static final long SEED = Long.getLong("samepage.seed", System.nanoTime());

    @TempDir
    Path dir;

    @Test
    void theEstimateOfDumpsIsWhatTheEngineMerges() throws IOException {
        SplittableRandom random = new SplittableRandom(SEED);
        for (int round = 0; round < 4; round++) {
            int mps = 2 + random.nextInt(6);
            boolean useZeroPages = random.nextBoolean();
            List<SourceFile> files = List.of(dump("a" + round, 300, random), dump("b" + round, 200, random),
                    dump("c" + round, 100, random));
            EngineContext context = new EngineContext().poolBytes(1024L * PAGE);
            context.knobs().maxPageSharing(mps).useZeroPages(useZeroPages).smartScan(false);
            EngineCounters exact = SourceScan.run(context.conclude(), files, false,
                    IllegalStateException::new).counters();
            PageDigestEstimator.Estimate e = SourceEstimate.run(files, List.of(), mps, useZeroPages).estimate();
            String at = " at max_page_sharing=" + mps + " use_zero_pages=" + useZeroPages
                    + " (replay with -Dsamepage.seed=" + SEED + ")";
            assertEquals(exact.pagesSharing(), e.pagesSharing(), "pages_sharing" + at);
            assertEquals(exact.pagesShared(), e.pagesShared(), "pages_shared" + at);
            assertEquals(exact.ksmZeroPages(), e.ksmZeroPages(), "ksm_zero_pages" + at);
            assertEquals(3, e.guests().size());
            assertEquals(3, e.pairs().size());
        }
    }

    /**
     * A dump gets the same sketch whether {@code scan} merges it exactly (files alone) or estimates it
     * beside a live source: values, and pages sketched (the all-zero chunk of one is in neither).
     */
    @Test
    void theEstimatesSketchesAreTheExactScansSketches() throws IOException {
        SplittableRandom random = new SplittableRandom(SEED);
        Path withZeroChunk = dumpPath("z", 700, random);
        byte[] bytes = Files.readAllBytes(withZeroChunk);
        java.util.Arrays.fill(bytes, 0, SourceFile.CHUNK_BYTES, (byte) 0);
        Files.write(withZeroChunk, bytes);
        List<SourceFile> files = List.of(dump("a", 600, random), SourceFile.check(withZeroChunk.toString()));
        EngineContext context = new EngineContext().poolBytes(2048L * PAGE);
        context.knobs().smartScan(false);
        List<GuestSketch> exact = SourceScan.run(context.conclude(), files, false, IllegalStateException::new).sketches();
        PageDigestEstimator.Estimate e = SourceEstimate.run(files, List.of(), 256, false).estimate();
        for (int g = 0; g < files.size(); g++) {
            String at = files.get(g).name() + " (replay with -Dsamepage.seed=" + SEED + ")";
            assertArrayEquals(exact.get(g).values(), e.guests().get(g).sketch().values(), at);
            assertEquals(exact.get(g).pages(), e.guests().get(g).sketch().pages(), at);
            assertTrue(exact.get(g).values().length > 0, at);
        }
        assertEquals(700 - SourceFile.CHUNK_BYTES / PAGE, exact.get(1).pages(), "the zero chunk is not sketched");
    }

    /** Pages drawn from 40 contents, a tenth of them zero, in 1 MiB chunks that are never all zero. */
    private Path dumpPath(String name, int pages, SplittableRandom random) throws IOException {
        ByteBuffer bytes = ByteBuffer.allocate(pages * PAGE);
        for (int p = 0; p < pages; p++) {
            int content = random.nextInt(40);
            if (content >= 4 || p % 256 == 0) {
                bytes.putInt(p * PAGE, content + 1);
            }
        }
        return Files.write(dir.resolve(name), bytes.array());
    }

    private SourceFile dump(String name, int pages, SplittableRandom random) throws IOException {
        return SourceFile.check(dumpPath(name, pages, random).toString());
    }
}
