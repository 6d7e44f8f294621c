package io.samepage.bench;

import io.samepage.linux.PageCache;
import io.samepage.core.DedupEngine;
import io.samepage.core.EngineContext;
import io.samepage.core.Guest;
import io.samepage.core.MergeDomain;
import io.samepage.image.ImageIndex;
import io.samepage.image.ImageLayout;
import io.samepage.image.ImageLoader;
import io.samepage.image.LoadStats;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

/**
 * Loading a real image into guests, one whole image per measured operation ({@code SingleShotTime}).
 *
 * <p>The image is the JDK this benchmark runs on ({@code java.home}, about 300 MB of real files), or the
 * file or directory named by {@code -p image=PATH} or {@code -Dsamepage.bench.image=PATH}. Its index is
 * built once per fork, before anything is measured; {@link ImageLoadReport} times the build itself.
 * <ul>
 *   <li>{@code firstLoad}: a fresh engine and domain, nothing resident: one guest loads the whole
 *       image with {@link ImageLoader#loadAll}, reading every distinct non-zero block, checking its
 *       SHA-256 and installing it, on {@code loaderThreads} threads (0: the loader's default, one per
 *       processor; the loader is made, and its threads started, before the measured load). With {@code pageCache=dropped} the image's files are also dropped
 *       from the operating system's page cache first ({@code posix_fadvise DONTNEED}; pages that some
 *       process maps stay, see {@link PageCache}).</li>
 *   <li>{@code laterLoad}: in an engine where one guest has loaded the image, another guest loads it:
 *       every block maps a resident frame or the zero frame, nothing is read.</li>
 *   <li>{@code withoutIndex}: the reference, {@link ImageLoader#loadWithoutIndex}: read every block and
 *       write it into a guest of a fresh engine, as a guest without Samepage would.</li>
 * </ul>
 * Engines made for one invocation are closed right after it, and later guests are destroyed after
 * their load, so a fork never holds more than one copy of the image's frames.
 */
@BenchmarkMode(Mode.SingleShotTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Fork(value = 1, jvmArgsAppend = "--enable-native-access=ALL-UNNAMED")
public class ImageLoadBenchmark {

    /** The system property that names the image when {@code -p image} is not given. */
    public static final String IMAGE_PROPERTY = "samepage.bench.image";

    /** Frames beyond the image's blocks in every engine's pool: room for the guests' own writes. */
    static final long POOL_SLACK_BYTES = 64L << 20;

    /**
     * The image a run loads: {@code param} if it is not empty, else {@code -Dsamepage.bench.image}, else
     * the running JDK's {@code java.home}.
     */
    public static Path imagePath(String param) {
        if (param != null && !param.isBlank()) {
            return Path.of(param);
        }
        return Path.of(System.getProperty(IMAGE_PROPERTY, System.getProperty("java.home")));
    }

    /** A fresh engine whose pool holds the whole image plus {@link #POOL_SLACK_BYTES}. */
    static DedupEngine newEngine(ImageIndex index) {
        return newEngine(index, 0);
    }

    /** A fresh engine whose pool holds the whole image, {@code extraBytes} and {@link #POOL_SLACK_BYTES}. */
    static DedupEngine newEngine(ImageIndex index, long extraBytes) {
        return DedupEngine.create(new EngineContext()
                .poolBytes(index.sourceSizeBytes() + extraBytes + POOL_SLACK_BYTES).hashSeed(1).conclude());
    }

    /** Drops every file of the image from the page cache. */
    static void dropFromPageCache(ImageLayout layout) {
        for (ImageLayout.Extent extent : layout.extents()) {
            PageCache.evict(layout.pathOf(extent));
        }
    }

    /** The image and its index, built once per fork. */
    @State(Scope.Benchmark)
    public static class Image {

        /** The image to load; empty: {@code -Dsamepage.bench.image}, else {@code java.home}. */
        @Param({""})
        public String image;

        /** The loader's threads ({@link ImageLoader#ImageLoader(ImageIndex, DedupEngine, int)}); 0: its default. */
        @Param({"0"})
        public int loaderThreads;

        ImageIndex index;

        @Setup(Level.Trial)
        public void build() {
            Path path = imagePath(image);
            index = ImageIndex.build(path);
            System.out.printf("%nimage %s: %d blocks of 4 KiB, %d of them zero%n", path, index.blockCount(),
                    index.zeroBlocks());
        }

        @TearDown(Level.Trial)
        public void close() {
            index.close();
        }

        ImageLoader newLoader(DedupEngine engine) {
            return new ImageLoader(index, engine, loaderThreads == 0 ? ImageLoader.defaultThreads() : loaderThreads);
        }

        Guest newGuest(DedupEngine engine, MergeDomain domain, String name) {
            return engine.createGuest(domain, name, index.sourceSizeBytes());
        }
    }

    /** Whether a load starts with the image in the operating system's page cache. */
    @State(Scope.Benchmark)
    public static class Cache {

        /**
         * {@code warm}: as the index build left it (read moments ago, so cached); {@code dropped}:
         * {@code posix_fadvise DONTNEED} on every file before each load.
         */
        @Param({"warm", "dropped"})
        public String pageCache;

        boolean dropped() {
            if (pageCache.equals("warm")) {
                return false;
            }
            if (pageCache.equals("dropped")) {
                if (!PageCache.available()) {
                    throw new IllegalStateException("pageCache=dropped needs posix_fadvise (Linux x86-64, AArch64, "
                            + "RISC-V 64); run with -p pageCache=warm");
                }
                return true;
            }
            throw new IllegalArgumentException("pageCache must be warm or dropped, not " + pageCache);
        }
    }

    /** A fresh engine, domain, guest and loader for each invocation; nothing resident. */
    @State(Scope.Thread)
    public static class Fresh {

        DedupEngine engine;
        Guest guest;
        ImageLoader loader;

        @Setup(Level.Invocation)
        public void setUp(Image image, Cache cache) {
            engine = newEngine(image.index);
            guest = image.newGuest(engine, engine.createDomain("image"), "first");
            loader = image.newLoader(engine);
            if (cache.dropped()) {
                dropFromPageCache(image.index.layout());
            }
        }

        @TearDown(Level.Invocation)
        public void tearDown() {
            loader.close();
            engine.close();
        }
    }

    /** One engine per fork in which a first guest has loaded the image; a new later guest per invocation. */
    @State(Scope.Thread)
    public static class Loaded {

        DedupEngine engine;
        MergeDomain domain;
        ImageLoader loader;
        Guest guest;
        private int guests;

        @Setup(Level.Trial)
        public void loadFirstGuest(Image image) {
            engine = newEngine(image.index);
            domain = engine.createDomain("image");
            loader = image.newLoader(engine);
            loader.loadAll(image.newGuest(engine, domain, "first"), 0);
        }

        @Setup(Level.Invocation)
        public void newGuest(Image image) {
            guest = image.newGuest(engine, domain, "later-" + ++guests);
        }

        @TearDown(Level.Invocation)
        public void destroyGuest() {
            guest.destroy();
        }

        @TearDown(Level.Trial)
        public void close() {
            loader.close();
            engine.close();
        }
    }

    @Benchmark
    @Warmup(iterations = 3)
    @Measurement(iterations = 15)
    public LoadStats firstLoad(Fresh fresh) {
        return fresh.loader.loadAll(fresh.guest, 0);
    }

    @Benchmark
    @Warmup(iterations = 10)
    @Measurement(iterations = 30)
    public LoadStats laterLoad(Loaded loaded) {
        return loaded.loader.loadAll(loaded.guest, 0);
    }

    @Benchmark
    @Warmup(iterations = 3)
    @Measurement(iterations = 15)
    public LoadStats withoutIndex(Image image, Fresh fresh) {
        return ImageLoader.loadWithoutIndex(image.index.layout(), fresh.guest, 0);
    }
}
