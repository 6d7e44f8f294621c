package io.samepage.density;

import com.fasterxml.jackson.databind.ObjectMapper;
import io.samepage.image.ImageIndex;
import io.samepage.testing.AllocationFaultLoader;
import io.samepage.testing.AllocationFaults;
import io.samepage.testing.ArmedScenario;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * The density suite's pieces that hold resources or write files, small (two guests of 1 MiB, an image of
 * 300 blocks, the engine modes alone: no kernel KSM), with the k-th allocation failing, for
 * {@link DensityAllocationFaultTest}, which loads this class through an {@link AllocationFaultLoader}.
 * Three steps, each a shape: {@code "suite"}, {@link DensitySuite#run}; {@code "report"}, a
 * {@link DensityReport} of a run made unarmed, and its files written over an earlier report
 * ({@link ReportFiles#write}); {@code "demo"}, {@code samepage demo}'s two parts ({@link ImageBoot#run}
 * with an index file rebuilt over an earlier one, then {@link DemoMerge#run}). With {@code "full-heap "}
 * before the shape, every allocation from the k-th on fails, so that clean-up that allocates fails too.
 *
 * <p>Whatever fails: the step throws the injected {@link OutOfMemoryError}, as it is (not swallowed, not
 * wrapped); no frame pool, native memory or thread of an engine, a page mix, an index or a loader is
 * left ({@link DensityLeftovers}, checked from the second run on: the first loads the classes), nor a mapping of a file in the directory; the directory holds no
 * file but the image, the report's directory and the index file, and the report's directory no file but
 * the report's; the report's files are the earlier report's, byte for byte, after a failure, and a whole,
 * valid report after a run that failed nothing; the index file is the earlier one or a whole index of the
 * image.
 *
 * <p>{@link #apply} returns the findings of one run, one line each ("" for none); {@link #getAsLong} the
 * allocations the last run passed. Not thread safe.
 */
final class DensityAllocationScenario extends ArmedScenario {

    private static final List<String> REPORT_FILES = List.of("density.json", "density.md", "density.png");
    /** Native memory of arenas that may stay after a run: a thread's automatic arena, freed by a collection. */
    private static final long NATIVE_SLACK_BYTES = 128 << 10;
    /**
     * The sizes of the frame pools the steps make: the suite's for one guest (the warm-up) and two, of
     * 1 MiB and 4 MiB of room; the demo's for a guest or two of the image's 300 blocks and 16 frames, and
     * its merge's, two guests of 1 MiB and 1 MiB of room.
     */
    private static final Set<Long> POOL_SIZES = Set.of(5L << 20, 6L << 20, 316L * 4096, 616L * 4096, 3L << 20);

    private final int step;
    private final boolean heapStaysFull;
    private final Path dir;
    private final Path image;
    private final Path out;
    private final Path indexFile;
    private final DensitySuite.Settings settings;
    private final DensityResults results;
    private final Map<String, byte[]> earlier = new LinkedHashMap<>();
    private final byte[] earlierIndex;
    /** Whether a run went before: the first loads classes, and the JVM's memory grows with it. */
    private boolean warm;

    DensityAllocationScenario(String shape, Path dir) throws IOException {
        int index = shape(shape, "suite", "report", "demo", "full-heap suite", "full-heap report", "full-heap demo");
        this.step = index % 3;
        this.heapStaysFull = index >= 3;
        this.dir = dir;
        this.image = TestImages.randomFile(dir, 300, 1);
        this.out = dir.resolve("out");
        this.indexFile = dir.resolve("image.idx");
        this.settings = new DensitySuite.Settings(image, new int[] {2}, 1, PageMix.DEFAULT_UNIQUE_PERCENT,
                PageMix.DEFAULT_SEED, 4096, 120, DensitySuite.KsmDefaults.none, false, 1);
        this.results = DensitySuite.run(settings, s -> { });
        ReportFiles.checkDirectory(out);
        ReportFiles.write(out, new DensityReport(results, "samepage bench density --earlier").files());
        for (String name : REPORT_FILES) {
            earlier.put(name, Files.readAllBytes(out.resolve(name)));
        }
        try (ImageIndex built = ImageIndex.build(image)) {
            built.writeTo(indexFile);
        }
        this.earlierIndex = Files.readAllBytes(indexFile);
    }

    @Override
    protected String run(long failAt) throws Exception {
        DensityLeftovers baseline = DensityLeftovers.baseline(POOL_SIZES);
        Throwable thrown = armed(() -> {
            if (heapStaysFull) {
                AllocationFaults.failFrom(failAt);      // re-armed before the first allocation: from the k-th on
            }
            switch (step) {
                case 0 -> DensitySuite.run(settings, s -> { });
                case 1 -> ReportFiles.write(out, new DensityReport(results, "samepage bench density --test").files());
                default -> {
                    ImageBoot.run(new ImageBoot.Settings(image, indexFile, true, 2, 1L << 40));
                    DemoMerge.run(2, 1);
                }
            }
        });
        List<String> findings = new ArrayList<>();
        String state = where() + ": " + (thrown == null ? "ran" : "failed");
        expectInjected(thrown, state, findings);
        if (thrown == null && failAt > 0 && !heapStaysFull) {
            findings.add(state + ", and the injected OutOfMemoryError was swallowed");
        }
        if (warm) {
            findings.addAll(baseline.left(state, NATIVE_SLACK_BYTES));
        }
        warm = true;
        List<String> mappings = DensityLeftovers.mappingsUnder(dir);
        if (!mappings.isEmpty()) {
            findings.add(state + ", and files in the directory are left mapped: " + mappings);
        }
        List<String> files = DensityLeftovers.files(dir);
        if (!files.equals(List.of(image.getFileName().toString(), "image.idx", "out"))) {
            findings.add(state + ", and the directory holds " + files);
        }
        List<String> reportFiles = DensityLeftovers.files(out);
        if (!reportFiles.equals(REPORT_FILES)) {
            findings.add(state + ", and the report's directory holds " + reportFiles);
        } else if (thrown != null || step != 1) {
            for (String name : REPORT_FILES) {
                if (!Arrays.equals(earlier.get(name), Files.readAllBytes(out.resolve(name)))) {
                    findings.add(state + ", and " + name + " is not the earlier report's");
                }
            }
        } else {
            findings.addAll(invalidReport(state));
        }
        byte[] index = Files.exists(indexFile) ? Files.readAllBytes(indexFile) : null;
        if (!Arrays.equals(earlierIndex, index) && !opens(indexFile)) {
            findings.add(state + ", and the index file is neither the earlier one nor a whole index of the image");
        }
        Files.write(indexFile, earlierIndex);
        for (String name : reportFiles) {
            if (!REPORT_FILES.contains(name)) {
                Files.delete(out.resolve(name));        // so that the next run finds what it leaves, not this
            }
        }
        ReportFiles.write(out, earlier);
        return String.join("\n", findings);
    }

    /** What is wrong with the report's files, written by a run that failed nothing. */
    private List<String> invalidReport(String state) throws IOException {
        List<String> found = new ArrayList<>();
        try {
            new ObjectMapper().readTree(out.resolve("density.json").toFile()).get("modes").get("post_load");
        } catch (IOException | RuntimeException e) {
            found.add(state + ", and density.json does not read as a report: " + e);
        }
        if (!Files.readString(out.resolve("density.md")).contains("## Must show")) {
            found.add(state + ", and density.md is not a whole report");
        }
        byte[] png = Files.readAllBytes(out.resolve("density.png"));
        if (png.length < 8 || png[1] != 'P' || png[2] != 'N' || png[3] != 'G') {
            found.add(state + ", and density.png is not a PNG");
        }
        return found;
    }

    private boolean opens(Path file) {
        try (ImageIndex opened = ImageIndex.open(file, image)) {
            return opened.blockCount() == 300;
        } catch (RuntimeException e) {
            return false;
        }
    }
}
