package io.samepage.bench;

import io.samepage.core.DedupEngine;
import io.samepage.core.EngineContext;
import io.samepage.core.EngineCounters;
import io.samepage.core.Guest;
import io.samepage.core.MergeDomain;
import io.samepage.core.Scanner;
import io.samepage.density.PageMix;
import io.samepage.image.ImageIndex;
import io.samepage.image.ImageLoader;
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
 * The timing parts of the density suite ({@code samepage bench density}, which measures memory, kernel
 * KSM and the container-equivalent, and writes the report): N guests of {@code guestMib}, one engine,
 * one merge domain, {@code use_zero_pages} on, one whole operation per measured invocation
 * ({@code SingleShotTime}).
 *
 * <p>The guests hold the suite's page mix with its defaults ({@link PageMix#density}: the image's first
 * blocks, some written after boot, zeroed pages, unique pages; the same bytes as {@code samepage bench
 * density --guest-mib 64}). The image is the JDK this runs on ({@code java.home}) or {@code -p
 * image=PATH}; its index and the mix are built once per fork.
 * <ul>
 *   <li>{@code postLoadMerge}: mode (b). Set up: every guest written by plain writes. Measured: the
 *       scanner stepped in this thread until two full scans in a row change nothing ({@link Scanner#scanUntilStable}).</li>
 *   <li>{@code preLoadIndexLoad}: mode (c), first half. Set up: N empty guests. Measured: each loads
 *       the image's blocks through {@link ImageLoader} (resident blocks mapped, not read).</li>
 *   <li>{@code preLoadScan}: mode (c), second half. Set up: the index loads and the guests' own writes.
 *       Measured: scanning until stable (the zeroed pages, which the index cannot know).</li>
 * </ul>
 * Each invocation gets a fresh engine, closed after it, with no warm frames ({@code warmFrames(0)}), as
 * the suite runs it so that frames in use are the guests' resident memory.
 */
@BenchmarkMode(Mode.SingleShotTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Fork(value = 1, jvmArgsAppend = "--enable-native-access=ALL-UNNAMED")
@Warmup(iterations = 2)
@Measurement(iterations = 5)
public class DensityBenchmark {

    private static final long HASH_SEED = 0x5A3E_9A6E_2008_0006L;

    /** The image, its index, the guests' sizes and their page mix: one per fork. */
    @State(Scope.Benchmark)
    public static class Image {

        /** The image; empty: {@code -Dsamepage.bench.image}, else {@code java.home}. */
        @Param({""})
        public String image;

        @Param({"4", "16"})
        public int guests;

        @Param({"64"})
        public int guestMib;

        ImageIndex index;
        PageMix mix;

        @Setup(Level.Trial)
        public void build() {
            Path path = ImageLoadBenchmark.imagePath(image);
            index = ImageIndex.build(path);
            mix = PageMix.density(path, guests, guestMib, PageMix.DEFAULT_UNIQUE_PERCENT, PageMix.DEFAULT_SEED);
        }

        @TearDown(Level.Trial)
        public void close() {
            mix.close();
            index.close();
        }

        DedupEngine newEngine() {
            EngineContext context = new EngineContext().poolBytes(guests * mix.guestBytes() + (16L << 20))
                    .hashSeed(HASH_SEED).warmFrames(0);
            context.knobs().useZeroPages(true);
            return DedupEngine.create(context.conclude());
        }

        Guest[] createGuests(DedupEngine engine) {
            MergeDomain domain = engine.createDomain("density");
            Guest[] created = new Guest[guests];
            for (int g = 0; g < guests; g++) {
                created[g] = engine.createGuest(domain, "vm-" + g, mix.guestBytes());
            }
            return created;
        }
    }

    /** Mode (b), set up: guests written by plain writes. */
    @State(Scope.Thread)
    public static class Written {

        DedupEngine engine;

        @Setup(Level.Invocation)
        public void setUp(Image image) {
            engine = image.newEngine();
            Guest[] guests = image.createGuests(engine);
            for (int g = 0; g < guests.length; g++) {
                image.mix.load(g, guests[g]);
            }
        }

        @TearDown(Level.Invocation)
        public void tearDown() {
            engine.close();
        }
    }

    /** Mode (c), first half, set up: empty guests and a loader. */
    @State(Scope.Thread)
    public static class Empty {

        DedupEngine engine;
        ImageLoader loader;
        Guest[] guests;

        @Setup(Level.Invocation)
        public void setUp(Image image) {
            engine = image.newEngine();
            loader = new ImageLoader(image.index, engine);
            guests = image.createGuests(engine);
        }

        @TearDown(Level.Invocation)
        public void tearDown() {
            loader.close();
            engine.close();
        }
    }

    /** Mode (c), second half, set up: guests loaded through the index, then their own writes. */
    @State(Scope.Thread)
    public static class IndexLoaded {

        DedupEngine engine;

        @Setup(Level.Invocation)
        public void setUp(Image image) {
            engine = image.newEngine();
            try (ImageLoader loader = new ImageLoader(image.index, engine)) {
                Guest[] guests = image.createGuests(engine);
                for (int g = 0; g < guests.length; g++) {
                    loader.load(guests[g], 0, 0, image.mix.imagePages());
                    image.mix.writeOwnPages(g, guests[g]);
                }
            }
        }

        @TearDown(Level.Invocation)
        public void tearDown() {
            engine.close();
        }
    }

    @Benchmark
    public EngineCounters postLoadMerge(Written written) {
        written.engine.scanner().scanUntilStable(Scanner.DEFAULT_MAX_FULL_SCANS_TO_SETTLE);
        return written.engine.counters();
    }

    @Benchmark
    public long preLoadIndexLoad(Image image, Empty empty) {
        long read = 0;
        for (Guest guest : empty.guests) {
            read += empty.loader.load(guest, 0, 0, image.mix.imagePages()).blocksRead();
        }
        return read;
    }

    @Benchmark
    public EngineCounters preLoadScan(IndexLoaded loaded) {
        loaded.engine.scanner().scanUntilStable(Scanner.DEFAULT_MAX_FULL_SCANS_TO_SETTLE);
        return loaded.engine.counters();
    }
}
