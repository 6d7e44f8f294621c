package io.samepage.density;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.samepage.image.ImageIndex;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Modes (a), (b), (c) and (e) on tiny guests: the byte relationships the suite's figures rest on. */
class EngineModesTest {

    private static final long PAGE = TestImages.PAGE;

    @TempDir
    Path dir;

    @Test
    void withAnImageOfDistinctBlocksPreLoadHoldsExactlyTheContainerEquivalentsFrames() throws Exception {
        Path image = TestImages.randomFile(dir, 200, 4);
        for (int n : new int[] {1, 2, 3}) {
            try (PageMix content = PageMix.density(image, n, 1, 25, 9); ImageIndex index = ImageIndex.build(image)) {
                List<ModeResult> ab = EngineModes.postLoad(content, n);
                ModeResult a = ab.get(0);
                ModeResult b = ab.get(1);
                ModeResult c = EngineModes.preLoad(content, index, n);
                ModeResult e = ContainerModel.of(content, n);
                long touched = (long) n * content.pagesPerGuest();
                assertEquals(touched * PAGE, a.hostBytes(), "(a): a frame per guest page");
                assertEquals(0, a.savedPages());
                // No zero or duplicate block in this image, and every zeroed page maps the zero frame: the
                // engine holds one copy of the image's pages plus each guest's private pages, as (e) does,
                // except the image pages every guest wrote over after boot, whose shared copy is gone.
                long eFrames = e.hostBytes() / PAGE;
                assertEquals(content.imagePages() + (long) n * content.privatePages(), eFrames);
                long expected = eFrames - writtenByEveryGuest(content, n);
                assertEquals(expected, frames(b), "(b) frames, N=" + n);
                assertEquals(expected, frames(c), "(c) frames, N=" + n);
                assertEquals(touched - expected, b.savedPages());
                assertEquals(touched - expected, c.savedPages());
                assertTrue(c.metadataBytes() > 0 && b.metadataBytes() > 0, "metadata is counted");
                assertTrue(c.hostBytes() < a.hostBytes() && b.hostBytes() < a.hostBytes());
                assertReached99(b);
                assertReached99(c);
            }
        }
    }

    @Test
    void anImageWithDuplicateAndZeroBlocksTakesFewerFramesThanTheContainerEquivalent() throws Exception {
        Path image = TestImages.directory(dir);
        int n = 2;
        try (PageMix content = PageMix.density(image, n, 1, 25, 9); ImageIndex index = ImageIndex.build(image)) {
            assertEquals(TestImages.DIRECTORY_BLOCKS, content.imagePages(), "the whole image fits the image share");
            List<ModeResult> ab = EngineModes.postLoad(content, n);
            ModeResult b = ab.get(1);
            ModeResult c = EngineModes.preLoad(content, index, n);
            ModeResult e = ContainerModel.of(content, n);
            // (e) keeps every loaded block; the engine keeps at most the distinct non-zero ones (fewer where
            // every guest wrote over a block after boot), plus the guests' private pages.
            long privatePages = (long) n * content.privatePages();
            assertTrue(frames(c) <= TestImages.DIRECTORY_DISTINCT_NONZERO_BLOCKS + privatePages, frames(c) + " frames");
            assertTrue(frames(c) < e.hostBytes() / PAGE, "(c) " + frames(c) + " < (e) " + e.hostBytes() / PAGE);
            assertEquals(frames(b), frames(c), "both end with every duplicate merged");
            assertTrue(ab.get(0).hostBytes() > b.hostBytes());
        }
    }

    private static long writtenByEveryGuest(PageMix content, int n) {
        long count = 0;
        for (int page : content.writtenAfterBoot(0)) {
            boolean all = true;
            for (int g = 1; g < n; g++) {
                all &= java.util.Arrays.binarySearch(content.writtenAfterBoot(g), page) >= 0;
            }
            count += all ? 1 : 0;
        }
        return count;
    }

    private static long frames(ModeResult r) {
        long frameBytes = r.hostBytes() - r.metadataBytes();
        assertEquals(0, frameBytes % PAGE);
        return frameBytes / PAGE;
    }

    private static void assertReached99(ModeResult r) {
        SharingTrace.Point p = r.at99();
        assertNotNull(p, r.mode() + " reached 99% of its final sharing");
        assertTrue(p.savedPages() >= 0.99 * r.savedPages(), p + " vs final " + r.savedPages());
        assertTrue(p.seconds() >= 0 && p.cpuSeconds() >= 0);
    }
}
