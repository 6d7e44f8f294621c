package io.samepage.density;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
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

    /** (b) at 20,000 pages per CPU-second and (d) at 2,000 ({@link MustShowTest#results}), three floor runs. */
    @Test
    void theReportGivesTheFloorsMedianAndBAndDAgainstIt() throws Exception {
        try (PageMix content = densityMix()) {
            assertFloorFigures(MustShowTest.results(content, 200, 0.1));
        }
    }

    private static void assertFloorFigures(DensityResults results) throws Exception {
        results.addFloor(new MergeFloor(200, 0.02));
        results.addFloor(new MergeFloor(200, 0.005));
        results.addFloor(new MergeFloor(200, 0.01));
        DensityReport report = new DensityReport(results, "samepage bench density --test");
        JsonNode floor = new ObjectMapper().readTree(report.json()).get("merge_floor");
        assertEquals(3, floor.get("runs").size(), floor.toString());
        assertEquals(20_000, floor.get("median_pages_per_cpu_second").asDouble(), 1e-6, floor.toString());
        assertEquals(1.0, floor.get("b_over_floor").asDouble(), 1e-9, floor.toString());
        assertEquals(10.0, floor.get("floor_over_d").asDouble(), 1e-9, floor.toString());
        assertTrue(report.markdown().contains("20000 pages per CPU-second (3 runs, 10000 to 40000, 200 pages freed each)")
                && report.markdown().contains("(b) merges at 1.00 of it; the floor is 10.00x (d) at full rate."),
                report.markdown());
    }

    @Test
    void everyFloorNoteReachesTheReportOnce() throws Exception {
        try (PageMix content = densityMix()) {
            assertNotesOnce(MustShowTest.results(content, 200, 0.1));
        }
    }

    private static void assertNotesOnce(DensityResults results) throws Exception {
        results.floorNote("run 2 failed, so it is left out: first");
        results.floorNote("run 3 failed, so it is left out: second");
        results.floorNote("run 3 failed, so it is left out: second");
        DensityReport report = new DensityReport(results, "samepage bench density --test");
        assertEquals(2, new ObjectMapper().readTree(report.json()).get("merge_floor").get("notes").size());
        String md = report.markdown();
        assertEquals(1, md.lines().filter(l -> l.equals("The merge floor: run 2 failed, so it is left out: first")).count(), md);
        assertEquals(1, md.lines().filter(l -> l.equals("The merge floor: run 3 failed, so it is left out: second")).count(), md);
    }

    /** A report names its image: the density preset's, of the two guests {@link MustShowTest#results} counts. */
    private PageMix densityMix() throws Exception {
        return PageMix.density(TestImages.randomFile(dir, 300, 1), 2, 1, 25, 9);
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
