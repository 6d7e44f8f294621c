package io.samepage.density;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** One run of the suite on tiny guests without kernel KSM: the report it renders and the files it writes. */
class DensitySuiteTest {

    @TempDir
    Path dir;

    private DensityReport run(int... guests) throws Exception {
        return runs(1, guests);
    }

    private DensityReport runs(int rateRuns, int... guests) throws Exception {
        Path image = TestImages.randomFile(dir, 300, 1);
        DensitySuite.Settings settings = new DensitySuite.Settings(image, guests, 1,
                PageMix.DEFAULT_UNIQUE_PERCENT, PageMix.DEFAULT_SEED, 4096, 120,
                DensitySuite.KsmDefaults.largest, false, rateRuns);
        List<String> steps = new ArrayList<>();
        DensityResults results = DensitySuite.run(settings, steps::add);
        assertEquals("N=1: warm-up of (b), (c) and the merge floor, not recorded", steps.getFirst());
        return new DensityReport(results, "samepage bench density --test");
    }

    @Test
    void jsonListsEveryModeAtEveryGuestCountAndTheFilesHoldWhatIsPrinted() throws Exception {
        DensityReport report = run(2, 1);
        JsonNode json = new ObjectMapper().readTree(report.json());
        java.util.Map<String, byte[]> files = report.files();
        assertEquals(List.of("density.json", "density.md", "density.png"), List.copyOf(files.keySet()));
        assertEquals(report.json(), new String(files.get("density.json"), java.nio.charset.StandardCharsets.UTF_8));
        assertEquals(report.markdown(), new String(files.get("density.md"), java.nio.charset.StandardCharsets.UTF_8));
        byte[] png = files.get("density.png");
        assertArrayEquals(new byte[] {(byte) 0x89, 'P', 'N', 'G'}, Arrays.copyOf(png, 4));

        assertEquals("[1,2]", json.get("inputs").get("guests").toString(), "sorted");
        // The tests run from a git checkout: the report names its commit (it named none).
        assertTrue(json.get("commit").asText().matches("[0-9a-f]{12}(\\+uncommitted)?"), json.get("commit").toString());
        assertTrue(report.markdown().contains("` at commit `" + json.get("commit").asText() + "`"), report.markdown());
        assertEquals(256, json.get("content").get("pages_per_guest").asInt());
        for (String mode : List.of("no_dedup", "post_load", "pre_load", "container")) {
            JsonNode results = json.get("modes").get(mode).get("results");
            assertEquals(2, results.size(), mode);
            for (JsonNode r : results) {
                assertTrue(r.get("ran").asBoolean() && r.get("host_bytes").asLong() > 0, mode + ": " + r);
            }
            assertTrue(json.get("modes").get(mode).get("fit_in_budget").get("guests").asLong() > 0, mode);
        }
        for (String mode : List.of("post_load", "pre_load")) {
            for (JsonNode r : json.get("modes").get(mode).get("results")) {
                assertTrue(r.get("seconds_to_99_percent").isNumber(), mode + ": " + r);
                assertTrue(r.get("cpu_seconds_to_99_percent").isNumber(), mode + ": " + r);
            }
        }
        for (String mode : List.of("ksm_defaults", "ksm_full_rate")) {
            assertEquals(0, json.get("modes").get(mode).get("results").size(), mode);
            assertEquals("skipped: --no-ksm", json.get("modes").get(mode).get("note").asText());
        }
        JsonNode checks = json.get("must_show");
        assertEquals(6, checks.size());
        assertTrue(checks.get(0).get("met").isBoolean() && checks.get(1).get("met").isBoolean(), checks.toString());
        for (int i = 2; i < 5; i++) {
            assertTrue(checks.get(i).get("met").isNull(), "needs KSM: " + checks.get(i));
        }
        // The engine's pool holds what the model counts, as the kernel sees it, in every engine run.
        assertTrue(checks.get(5).get("met").asBoolean(), checks.get(5).toString());
        for (String mode : List.of("no_dedup", "post_load", "pre_load")) {
            for (JsonNode r : json.get("modes").get(mode).get("results")) {
                JsonNode kernel = r.get("kernel");
                assertTrue(kernel.get("agrees").asBoolean(), mode + ": " + kernel);
                assertEquals(kernel.get("model_frame_bytes").asLong() + 4096L * kernel.get("pool_difference_pages").asLong(),
                        kernel.get("pool_held_bytes").asLong(), mode + ": " + kernel);
            }
        }
        assertTrue(json.get("modes").get("container").get("results").get(0).get("kernel") == null, "a model has no kernel view");
    }

    @Test
    void markdownShowsEachMustShowWithItsVerdict() throws Exception {
        String md = run(1, 2).markdown();
        assertTrue(md.contains("## Must show"), md);
        assertTrue(md.contains("| guests |"), md);
        assertEquals(6, md.lines().filter(l -> l.startsWith("- ")
                && l.matches(".*\\*\\*(met|NOT met|not measured)\\*\\*")).count(), md);
        assertFalse(md.contains("NaN"), md);
        assertFalse(md.contains("One guest count only"), "two counts fit a line with a shared part");
        assertTrue(md.contains("## Host memory against the kernel"), md);
        assertEquals(6, md.lines().filter(l -> l.matches("\\| \\([abc]\\) N=[12] \\|.*\\| agrees \\|")).count(), md);
    }

    /** With one N every fit goes through the origin; the report says so, where before it showed "shared MiB 0.0" bare. */
    @Test
    void aReportOfOneGuestCountSaysItsFitHasNoSharedPart() throws Exception {
        String md = run(2).markdown();
        assertTrue(md.contains("One guest count only: each line goes through the origin"), md);
    }

    @Test
    void bRunsRateRunsTimesAtTheLargestNOnlyAndTheReportListsEveryRun() throws Exception {
        DensityReport report = runs(3, 1, 2);
        JsonNode postLoad = new ObjectMapper().readTree(report.json()).get("modes").get("post_load");
        assertEquals(2, postLoad.get("results").size(), "the tables keep one run per N");
        JsonNode runs = postLoad.get("runs_at_largest_n");
        assertEquals(3, runs.size(), postLoad.toString());
        for (JsonNode r : runs) {
            assertEquals(2, r.get("guests").asInt());
            assertEquals(postLoad.get("results").get(1).get("saved_pages"), r.get("saved_pages"), "the same work");
        }
        assertEquals(postLoad.get("results").get(1), runs.get(0), "the table's run is the first");
        assertTrue(report.markdown().contains("(b) Samepage, scanning after load, N=2, every run"), report.markdown());
        if (MergeFloor.available()) {       // a floor run follows each run of (b) at the largest N, freeing what it saves
            JsonNode floor = new ObjectMapper().readTree(report.json()).get("merge_floor");
            assertEquals(3, floor.get("runs").size(), floor.toString());
            for (JsonNode r : floor.get("runs")) {
                assertEquals(runs.get(0).get("saved_pages").asLong(), r.get("pages_freed").asLong(), floor.toString());
            }
            assertTrue(floor.get("b_over_floor").isNumber() && floor.get("floor_over_d").isNull(), floor.toString());
            assertTrue(report.markdown().contains("## The merge floor, N=2"), report.markdown());
            assertTrue(report.markdown().contains("the floor is not compared with (d), which has no rate in this run."),
                    report.markdown());
        }
    }

    @Test
    void rateRunsOutsideOneToNineAreRefused() {
        for (int runs : new int[] {0, 10}) {
            assertThrows(IllegalArgumentException.class, () -> new DensitySuite.Settings(dir, new int[] {1}, 1, 25, 1,
                    4096, 120, DensitySuite.KsmDefaults.none, false, runs));
        }
    }

    @Test
    void anImageThatCannotBeReadIsBadImage() {
        DensitySuite.Settings settings = new DensitySuite.Settings(dir.resolve("nothing"), new int[] {1}, 1, 25, 1,
                4096, 120, DensitySuite.KsmDefaults.none, false, 1);
        DensityException e = assertThrows(DensityException.class, () -> DensitySuite.run(settings, step -> { }));
        assertEquals(DensityException.Kind.BAD_IMAGE, e.kind());
    }
}
