package io.samepage.bench;

import io.samepage.linux.PageCache;
import io.samepage.hashing.Pages;
import io.samepage.image.ImageLoader;
import io.samepage.image.LoadStats;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collection;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import org.openjdk.jmh.results.BenchmarkResult;
import org.openjdk.jmh.results.IterationResult;
import org.openjdk.jmh.results.RunResult;
import org.openjdk.jmh.results.format.ResultFormatType;
import org.openjdk.jmh.runner.Runner;
import org.openjdk.jmh.runner.RunnerException;
import org.openjdk.jmh.runner.options.OptionsBuilder;
import org.openjdk.jmh.util.ListStatistics;

/**
 * Runs {@link ImageLoadScenario} (composition, index build, N guests) in this JVM, then
 * {@link ImageLoadBenchmark} under JMH, and writes what the README quotes: {@code image-load.json}
 * (inputs, every number, the targets and whether they are met), {@code image-load.md} (the tables,
 * also printed) and JMH's own {@code image-load-jmh.json}. About 2 minutes on a 2-core machine.
 *
 * <p>Usage: {@code java -cp jmh-benchmarks/target/benchmarks.jar io.samepage.bench.ImageLoadReport
 * [OUT_DIR] [--image PATH] [--guests N] [--writes-per-guest W] [--threads T] [--no-jmh]} (defaults:
 * {@code target/bench}, the running JDK's {@code java.home}, 8 guests, 64 pages written per guest, the
 * loader's default threads: one per processor).
 *
 * <p>Times are summarized per benchmark over its measured iterations (one full-image load each): the
 * median, the mean with JMH's 99.9% interval, and the range. A ratio is quoted as the ratio of medians
 * and, as its error bar, the range from the least to the most favourable pair of iterations.
 */
public final class ImageLoadReport {

    static final double TARGET_MAX_READ_FRACTION = 0.05;
    static final double TARGET_MIN_SPEEDUP = 10;
    /** "About one copy": frames in use may exceed distinct blocks + own writes by this fraction. */
    static final double TARGET_FRAME_SLACK = 0.01;

    private ImageLoadReport() {
    }

    public static void main(String[] args) throws RunnerException, IOException {
        Path out = Path.of("target/bench");
        String image = "";
        int guests = 8;
        int writes = 64;
        boolean jmh = true;
        int threads = 0;
        for (int i = 0; i < args.length; i++) {
            switch (args[i]) {
                case "--image" -> image = args[++i];
                case "--guests" -> guests = Integer.parseInt(args[++i]);
                case "--writes-per-guest" -> writes = Integer.parseInt(args[++i]);
                case "--no-jmh" -> jmh = false;
                case "--threads" -> threads = Integer.parseInt(args[++i]);
                default -> {
                    if (args[i].startsWith("--")) {
                        throw new IllegalArgumentException("unknown option " + args[i] + "; usage: ImageLoadReport "
                                + "[OUT_DIR] [--image PATH] [--guests N] [--writes-per-guest W] [--threads T] [--no-jmh]");
                    }
                    out = Path.of(args[i]);
                }
            }
        }
        if (threads < 0 || threads > ImageLoader.MAX_THREADS) {
            throw new IllegalArgumentException("--threads must be 0 (the loader's default) to " + ImageLoader.MAX_THREADS
                    + ", not " + threads);
        }
        int loaderThreads = threads == 0 ? ImageLoader.defaultThreads() : threads;
        if (guests < 2 || writes < 0) {
            throw new IllegalArgumentException("--guests must be at least 2 (a first and a later guest) and "
                    + "--writes-per-guest at least 0, not " + guests + " and " + writes);
        }
        Path path = ImageLoadBenchmark.imagePath(image).toAbsolutePath();
        Files.createDirectories(out);
        ImageLoadScenario.Result scenario = ImageLoadScenario.run(path, guests, writes, loaderThreads);
        Map<String, Summary> times = new LinkedHashMap<>();
        if (jmh) {
            OptionsBuilder options = new OptionsBuilder();
            options.include(ImageLoadBenchmark.class.getName() + "\\.").param("image", path.toString())
                    .param("loaderThreads", Integer.toString(loaderThreads)).resultFormat(ResultFormatType.JSON).result(out.resolve("image-load-jmh.json").toString());
            if (!PageCache.available()) {
                options.param("pageCache", "warm");
            }
            for (RunResult run : new Runner(options.build()).run()) {
                times.put(key(run), Summary.of(run, ms -> ms));
            }
        }
        Report report = new Report(scenario, times, loaderThreads);
        Files.writeString(out.resolve("image-load.json"), Json.write(report.json()));
        String md = report.markdown();
        Files.writeString(out.resolve("image-load.md"), md);
        System.out.print(md);
    }

    /** {@code firstLoad/warm}, {@code laterLoad}, ...: the method and its page cache setting. */
    private static String key(RunResult run) {
        String name = run.getParams().getBenchmark();
        String method = name.substring(name.lastIndexOf('.') + 1);
        String cache = run.getParams().getParam("pageCache");
        return cache == null ? method : method + "/" + cache;
    }

    /** One benchmark's measured iterations in milliseconds per load. */
    /** {@code slow / fast}: the ratio of medians, and the least and most favourable iteration pairs. */
    record Ratio(double median, double low, double high) {

        static Ratio of(Summary slow, Summary fast) {
            if (slow == null || fast == null) {
                return null;
            }
            return new Ratio(slow.median() / fast.median(), slow.min() / fast.max(), slow.max() / fast.min());
        }

        Map<String, Object> json() {
            Map<String, Object> json = new LinkedHashMap<>();
            json.put("ofMedians", median);
            json.put("lowest", low);
            json.put("highest", high);
            return json;
        }

        @Override
        public String toString() {
            return String.format(Locale.ROOT, "%.1fx (%.1f – %.1f)", median, low, high);
        }
    }

    /** Everything derived from one run, rendered as JSON and as Markdown. */
    private record Report(ImageLoadScenario.Result scenario, Map<String, Summary> times, int loaderThreads) {

        ImageLoadScenario.Composition image() {
            return scenario.composition();
        }

        ImageLoadScenario.Guests guests() {
            return scenario.guests();
        }

        /** The largest fraction of blocks any guest after the first read from disk. */
        double maxLaterReadFraction() {
            double max = 0;
            for (ImageLoadScenario.GuestLoad load : guests().loads().subList(1, guests().loads().size())) {
                max = Math.max(max, load.stats().readFraction());
            }
            return max;
        }

        long expectedFrames() {
            return image().distinctNonZeroBlocks() + guests().ownWrites();
        }

        long framesAdded() {
            return guests().framesAfter() - guests().framesBefore();
        }

        boolean readTargetMet() {
            return maxLaterReadFraction() <= TARGET_MAX_READ_FRACTION;
        }

        Ratio speedup() {
            return Ratio.of(times.get("firstLoad/warm"), times.get("laterLoad"));
        }

        /** Met if even the least favourable pair of iterations (fastest first, slowest later) is 10x apart. */
        Boolean speedupTargetMet() {
            Ratio speedup = speedup();
            return speedup == null ? null : speedup.low() >= TARGET_MIN_SPEEDUP;
        }

        boolean framesTargetMet() {
            return framesAdded() <= expectedFrames() * (1 + TARGET_FRAME_SLACK);
        }

        Map<String, Object> json() {
            Map<String, Object> run = new LinkedHashMap<>();
            run.put("date", Instant.now().toString());
            run.put("java", System.getProperty("java.vm.name") + " " + System.getProperty("java.vm.version"));
            run.put("os", System.getProperty("os.name") + " " + System.getProperty("os.version") + " "
                    + System.getProperty("os.arch"));
            run.put("cpus", Runtime.getRuntime().availableProcessors());
            Map<String, Object> json = new LinkedHashMap<>();
            json.put("run", run);
            ImageLoadScenario.Composition c = image();
            Map<String, Object> image = new LinkedHashMap<>();
            image.put("path", c.path().toString());
            image.put("files", c.files());
            image.put("fileBytes", c.fileBytes());
            image.put("laidOutBytes", c.laidOutBytes());
            image.put("blocks", c.blocks());
            image.put("zeroBlocks", c.zeroBlocks());
            image.put("distinctNonZeroBlocks", c.distinctNonZeroBlocks());
            image.put("duplicateNonZeroBlocks", c.blocks() - c.zeroBlocks() - c.distinctNonZeroBlocks());
            json.put("image", image);
            ImageLoadScenario.Build b = scenario.build();
            Map<String, Object> build = new LinkedHashMap<>();
            build.put("warmNanos", Arrays.stream(b.warmNanos()).boxed().toList());
            build.put("warmMedianNanos", median(b.warmNanos()));
            build.put("pageCacheDroppedNanos", b.droppedNanos());
            build.put("imageBytesCachedBefore", b.cachedBytesBefore());
            build.put("imageBytesCachedAfterDrop", b.cachedBytesAfterDrop());
            build.put("dropMechanism", "posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED) on every file; pages that a "
                    + "process maps stay cached");
            build.put("indexBytes", b.indexBytes());
            build.put("threads", Runtime.getRuntime().availableProcessors());
            json.put("indexBuild", build);
            Map<String, Object> jmh = new LinkedHashMap<>();
            times.forEach((k, v) -> jmh.put(k, v.toJson("ms per full-image load")));
            json.put("loaderThreads", loaderThreads);
            json.put("loadTimes", jmh);
            Map<String, Object> ratios = new LinkedHashMap<>();
            putRatio(ratios, "firstLoadWarmOverLaterLoad", speedup());
            putRatio(ratios, "firstLoadDroppedOverLaterLoad", Ratio.of(times.get("firstLoad/dropped"), times.get("laterLoad")));
            putRatio(ratios, "firstLoadWarmOverWithoutIndexWarm",
                    Ratio.of(times.get("firstLoad/warm"), times.get("withoutIndex/warm")));
            putRatio(ratios, "firstLoadDroppedOverWithoutIndexDropped",
                    Ratio.of(times.get("firstLoad/dropped"), times.get("withoutIndex/dropped")));
            putRatio(ratios, "withoutIndexWarmOverLaterLoad", Ratio.of(times.get("withoutIndex/warm"), times.get("laterLoad")));
            json.put("ratios", ratios);
            ImageLoadScenario.Guests g = guests();
            Map<String, Object> guests = new LinkedHashMap<>();
            guests.put("guests", g.loads().size());
            guests.put("writesPerGuest", g.writesPerGuest());
            guests.put("writeBytes", ImageLoadScenario.WRITE_BYTES);
            List<Object> perGuest = new ArrayList<>();
            for (ImageLoadScenario.GuestLoad load : g.loads()) {
                LoadStats s = load.stats();
                Map<String, Object> one = new LinkedHashMap<>();
                one.put("guest", load.name());
                one.put("blocksRead", s.blocksRead());
                one.put("blocksMapped", s.blocksMapped());
                one.put("zeroBlocks", s.zeroBlocks());
                one.put("readFraction", s.readFraction());
                one.put("loadNanos", s.loadNanos());
                one.put("framesInUseAfterLoad", load.framesAfterLoad());
                one.put("framesInUseAfterWrites", load.framesAfterWrites());
                perGuest.add(one);
            }
            guests.put("perGuest", perGuest);
            guests.put("framesInUseBefore", g.framesBefore());
            guests.put("framesInUseAfter", g.framesAfter());
            guests.put("framesAdded", framesAdded());
            guests.put("distinctNonZeroBlocksPlusOwnWrites", expectedFrames());
            guests.put("residentFrames", g.residentFrames());
            guests.put("containerEquivalentFrames", c.blocks() + g.ownWrites());
            guests.put("withoutSharingFrames", (long) g.loads().size() * c.blocks());
            json.put("guests", guests);
            Map<String, Object> targets = new LinkedHashMap<>();
            targets.put("maxLaterReadFraction", maxLaterReadFraction());
            targets.put("maxLaterReadFractionTarget", TARGET_MAX_READ_FRACTION);
            targets.put("readTargetMet", readTargetMet());
            targets.put("speedupTarget", TARGET_MIN_SPEEDUP);
            targets.put("speedupTargetMet", speedupTargetMet());
            targets.put("framesSlackTarget", TARGET_FRAME_SLACK);
            targets.put("framesTargetMet", framesTargetMet());
            json.put("targets", targets);
            return json;
        }

        private static void putRatio(Map<String, Object> ratios, String name, Ratio ratio) {
            if (ratio != null) {
                ratios.put(name, ratio.json());
            }
        }

        String markdown() {
            ImageLoadScenario.Composition c = image();
            ImageLoadScenario.Build b = scenario.build();
            ImageLoadScenario.Guests g = guests();
            StringBuilder md = new StringBuilder();
            md.append(String.format(Locale.ROOT, "# Image load: %d guests from one image%n%n", g.loads().size()));
            md.append(String.format(Locale.ROOT, "%s %s, %d CPUs, %s.%n%n", System.getProperty("java.vm.name"),
                    System.getProperty("java.vm.version"), Runtime.getRuntime().availableProcessors(), Instant.now()));
            md.append("| image | |\n|---|---:|\n");
            row(md, "path", "`" + c.path() + "`");
            row(md, "files", c.files());
            row(md, "size of the files", mib(c.fileBytes()));
            row(md, "laid out in 4 KiB blocks", mib(c.laidOutBytes()));
            row(md, "blocks", c.blocks());
            row(md, "zero blocks", c.zeroBlocks() + pct(c.zeroBlocks(), c.blocks()));
            row(md, "distinct non-zero blocks", c.distinctNonZeroBlocks() + pct(c.distinctNonZeroBlocks(), c.blocks()));
            row(md, "duplicate non-zero blocks", c.blocks() - c.zeroBlocks() - c.distinctNonZeroBlocks());
            row(md, "index build, page cache warm (median of " + b.warmNanos().length + ")",
                    String.format(Locale.ROOT, "%.0f ms (%s)", median(b.warmNanos()) / 1e6, rangeMillis(b.warmNanos())));
            row(md, "index build, page cache dropped", b.droppedNanos() < 0 ? "n/a"
                    : String.format(Locale.ROOT, "%.0f ms", b.droppedNanos() / 1e6));
            row(md, "image in page cache before / after `posix_fadvise DONTNEED`", b.cachedBytesAfterDrop() < 0 ? "n/a"
                    : mib(b.cachedBytesBefore()) + " / " + mib(b.cachedBytesAfterDrop()));
            row(md, "index size", mib(b.indexBytes()));
            if (b.cachedBytesAfterDrop() > 0) {
                md.append("\n`posix_fadvise DONTNEED` keeps pages that some process maps (a running JDK maps its own "
                        + "`lib/modules`, `libjvm.so`, `classes.jsa`): `dropped` is that cold. A copy of the image that no "
                        + "process uses drops to nothing: `cp -a IMAGE /tmp/copy` and `--image /tmp/copy`.\n");
            }
            if (!times.isEmpty()) {
                md.append(String.format(Locale.ROOT, "%n## Load time per guest (JMH, one full-image load per iteration, "
                        + "loader threads: %d)%n%n", loaderThreads));
                md.append("| load | page cache | median ms | mean ± 99.9% | min – max | n | image GB/s (at the median) |\n");
                md.append("|---|---|---:|---:|---:|---:|---:|\n");
                for (Map.Entry<String, Summary> e : times.entrySet()) {
                    String[] name = e.getKey().split("/");
                    Summary s = e.getValue();
                    md.append(String.format(Locale.ROOT, "| %s | %s | %.1f | %.1f ± %.1f | %.1f – %.1f | %d | %.2f |%n",
                            name[0], name.length > 1 ? name[1] : "(first guest resident)", s.median(), s.mean(), s.error(),
                            s.min(), s.max(), s.n(), c.laidOutBytes() / (s.median() * 1e6)));
                }
                md.append("\nRatios of medians (range: least – most favourable pair of iterations):\n\n");
                ratioLine(md, "firstLoad (warm) / laterLoad", speedup());
                ratioLine(md, "firstLoad (dropped) / laterLoad", Ratio.of(times.get("firstLoad/dropped"), times.get("laterLoad")));
                ratioLine(md, "firstLoad / withoutIndex, warm",
                        Ratio.of(times.get("firstLoad/warm"), times.get("withoutIndex/warm")));
                ratioLine(md, "firstLoad / withoutIndex, dropped",
                        Ratio.of(times.get("firstLoad/dropped"), times.get("withoutIndex/dropped")));
                ratioLine(md, "withoutIndex (warm) / laterLoad", Ratio.of(times.get("withoutIndex/warm"), times.get("laterLoad")));
            }
            md.append(String.format(Locale.ROOT, "%n## %d guests in one engine, one after another%n%n", g.loads().size()));
            md.append(String.format(Locale.ROOT, "Each guest loads the image, then writes %d bytes into %d pages of its own.%n%n",
                    ImageLoadScenario.WRITE_BYTES, g.writesPerGuest()));
            md.append("| guest | blocks read | read % | mapped | zero | load ms | x guest-0 | frames after load | after writes |\n");
            md.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|\n");
            double first = g.loads().get(0).stats().loadNanos();
            for (ImageLoadScenario.GuestLoad load : g.loads()) {
                LoadStats s = load.stats();
                md.append(String.format(Locale.ROOT, "| %s | %d | %.3f | %d | %d | %.1f | %.1f | %d | %d |%n", load.name(),
                        s.blocksRead(), 100 * s.readFraction(), s.blocksMapped(), s.zeroBlocks(), s.loadNanos() / 1e6,
                        first / s.loadNanos(), load.framesAfterLoad(), load.framesAfterWrites()));
            }
            md.append("\nLoad times here are single loads in the report's own JVM, guest-0's with JIT warm-up: quote the JMH "
                    + "medians above. A later guest reads only blocks that an earlier guest overwrote while it was their "
                    + "last mapper (guest-0 writes before guest-1 loads).\n");
            md.append("\n| host frames (4 KiB) | frames | MiB |\n|---|---:|---:|\n");
            frames(md, "in use before the first guest (the zero frame)", g.framesBefore());
            frames(md, "in use after " + g.loads().size() + " guests", g.framesAfter());
            frames(md, "added by the guests", framesAdded());
            frames(md, "distinct non-zero blocks + own writes (" + c.distinctNonZeroBlocks() + " + " + g.ownWrites() + ")",
                    expectedFrames());
            frames(md, "resident frames (registry)", g.residentFrames());
            frames(md, "container-equivalent: one copy of every block + own writes", c.blocks() + g.ownWrites());
            frames(md, "without sharing: every guest its own copy", (long) g.loads().size() * c.blocks());
            md.append("\n## Targets\n\n");
            md.append(String.format(Locale.ROOT, "- every guest after the first reads at most %.0f%% of its blocks: "
                    + "at most %.3f%% read: %s%n", 100 * TARGET_MAX_READ_FRACTION, 100 * maxLaterReadFraction(),
                    readTargetMet() ? "met" : "NOT met"));
            Boolean speed = speedupTargetMet();
            md.append(String.format(Locale.ROOT, "- a later guest loads at least %.0fx faster than the first: %s: %s%n",
                    TARGET_MIN_SPEEDUP, speed == null ? "not measured (--no-jmh)" : "firstLoad (warm) / laterLoad = "
                            + speedup() + ", judged on the lowest", speed == null ? "n/a" : speed ? "met" : "NOT met"));
            md.append(String.format(Locale.ROOT, "- frames after %d guests about one copy of the distinct non-zero blocks "
                    + "plus own writes: %d added, %d expected (%+d): %s%n", g.loads().size(), framesAdded(),
                    expectedFrames(), framesAdded() - expectedFrames(), framesTargetMet() ? "met" : "NOT met"));
            return md.toString();
        }

        private static void row(StringBuilder md, String name, Object value) {
            md.append("| ").append(name).append(" | ").append(value).append(" |\n");
        }

        private static void frames(StringBuilder md, String name, long frames) {
            md.append(String.format(Locale.ROOT, "| %s | %d | %.1f |%n", name, frames, frames * (double) Pages.PAGE_SIZE / (1 << 20)));
        }

        private static void ratioLine(StringBuilder md, String name, Ratio ratio) {
            if (ratio != null) {
                md.append("- ").append(name).append(": ").append(ratio).append('\n');
            }
        }
    }

    static double median(long[] values) {
        long[] sorted = values.clone();
        Arrays.sort(sorted);
        int n = sorted.length;
        return n % 2 == 1 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0;
    }

    private static String rangeMillis(long[] nanos) {
        return String.format(Locale.ROOT, "%.0f – %.0f", Arrays.stream(nanos).min().orElse(0) / 1e6,
                Arrays.stream(nanos).max().orElse(0) / 1e6);
    }

    private static String mib(long bytes) {
        return String.format(Locale.ROOT, "%.1f MiB", bytes / (double) (1 << 20));
    }

    private static String pct(long part, long whole) {
        return String.format(Locale.ROOT, " (%.1f%%)", 100.0 * part / whole);
    }
}
