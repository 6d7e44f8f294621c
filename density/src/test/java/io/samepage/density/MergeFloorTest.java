package io.samepage.density;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The merge floor does what mode (b) does minus the finding: it frees exactly the pages (b) saves, on an image
 * of distinct blocks, on one with duplicate and zero blocks, and in the demo's shuffled layout.
 */
class MergeFloorTest {

    @TempDir
    Path dir;

    @Test
    void theFloorFreesExactlyThePagesModeBSaves() throws Exception {
        assumeTrue(MergeFloor.available(), "needs Linux's native memory calls");
        int n = 3;
        for (PageMix content : List.of(PageMix.density(TestImages.randomFile(dir, 200, 4), n, 1, 25, 9),
                PageMix.density(TestImages.directory(dir), n, 1, 25, 9), PageMix.demo(n, 512))) {
            try (content) {
                long saved = EngineModes.postLoad(content, n).get(1).savedPages();
                MergeFloor floor = MergeFloor.measure(content, n);
                assertTrue(saved > 0, "a mix with something to merge");
                assertEquals(saved, floor.pagesFreed(), content.image() + ": the floor frees what (b) saves");
                assertTrue(floor.cpuSeconds() > 0 && floor.pagesPerCpuSecond() > 0, floor.toString());
            }
        }
    }

    @Test
    void eachNonZeroPagesOriginalIsTheFirstPageWithItsBytes() throws Exception {
        int n = 3;
        try (PageMix content = PageMix.density(TestImages.directory(dir), n, 1, 25, 9)) {
            int[] original = MergeFloor.originals(content, n);
            assertEquals(n * content.pagesPerGuest(), original.length);
            Map<ByteBuffer, Integer> first = new HashMap<>();
            byte[] bytes = new byte[TestImages.PAGE];
            int repeats = 0;
            for (int g = 0; g < n; g++) {
                for (int p = 0; p < content.pagesPerGuest(); p++) {
                    content.page(g, p, bytes);
                    int page = g * content.pagesPerGuest() + p;
                    if (isZero(bytes)) {
                        continue;               // found by its bytes when timed
                    }
                    int expected = first.computeIfAbsent(ByteBuffer.wrap(bytes.clone()), k -> page);
                    assertEquals(expected, original[page], "guest " + g + ", page " + p);
                    repeats += expected != page ? 1 : 0;
                }
            }
            assertTrue(repeats > content.pagesPerGuest() / 4, "most image pages repeat: " + repeats);
        }
    }

    private static boolean isZero(byte[] bytes) {
        for (byte b : bytes) {
            if (b != 0) {
                return false;
            }
        }
        return true;
    }
}
