package io.samepage.bench;

import io.samepage.core.DedupEngine;
import io.samepage.core.EngineContext;
import io.samepage.core.EngineCounters;
import io.samepage.core.Guest;
import io.samepage.core.MergeDomain;
import io.samepage.core.Scanner;
import io.samepage.hashing.Pages;
import io.samepage.image.ImageIndex;
import io.samepage.image.ImageLoader;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.channels.FileChannel;
import java.nio.file.StandardOpenOption;
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
 * <p>The guests hold the suite's default mix: the image's first blocks (half of the guest, of which 5%
 * of the guest's pages are then overwritten by the guest), 25% zeroed, 25% unique random pages. The
 * image is the JDK this runs on ({@code java.home}) or {@code -p image=PATH}; its index is built once per
 * fork. Unlike the suite's {@code GuestContent}, a page written after boot here is stamped with its own
 * guest and page numbers rather than seeded bytes: only that it differs matters.
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

    private static final int PAGE = Pages.PAGE_SIZE;
    private static final long SEED = 0x5A3E_9A6E_2008_0006L;

    /** The image, its index, and the guests' sizes: one per fork. */
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
        Arena arena;
        MemorySegment imageBytes;
        int pagesPerGuest;
        int imagePages;
        int zeroPages;

        @Setup(Level.Trial)
        public void build() {
            index = ImageIndex.build(ImageLoadBenchmark.imagePath(image));
            pagesPerGuest = guestMib << 20 >> Pages.PAGE_SHIFT;
            imagePages = (int) Math.min(pagesPerGuest / 2, index.blockCount());
            zeroPages = pagesPerGuest - imagePages - pagesPerGuest / 4;
            arena = Arena.ofShared();
            imageBytes = arena.allocate((long) imagePages * PAGE, PAGE);
            readPrefix();
        }

        @TearDown(Level.Trial)
        public void close() {
            arena.close();
            index.close();
        }

        private void readPrefix() {
            var layout = index.layout();
            long end = (long) imagePages * PAGE;
            for (var extent : layout.extents()) {
                if (extent.imageOffset() >= end) {
                    break;
                }
                long length = Math.min(extent.length(), end - extent.imageOffset());
                try (FileChannel channel = FileChannel.open(layout.pathOf(extent), StandardOpenOption.READ)) {
                    var into = imageBytes.asSlice(extent.imageOffset(), length).asByteBuffer();
                    while (into.hasRemaining() && channel.read(into, into.position()) >= 0) {
                        // Reads until the extent is in, or the file ends (then the rest stays zero).
                    }
                } catch (IOException e) {
                    throw new UncheckedIOException(e);
                }
            }
        }

        DedupEngine newEngine() {
            EngineContext context = new EngineContext().poolBytes((long) guests * pagesPerGuest * PAGE + (16L << 20))
                    .hashSeed(SEED).warmFrames(0);
            context.knobs().useZeroPages(true);
            return DedupEngine.create(context.conclude());
        }

        Guest[] createGuests(DedupEngine engine) {
            MergeDomain domain = engine.createDomain("density");
            Guest[] created = new Guest[guests];
            for (int g = 0; g < guests; g++) {
                created[g] = engine.createGuest(domain, "vm-" + g, (long) pagesPerGuest * PAGE);
            }
            return created;
        }

        /** The guest's writes after its image is in: stamps on 5% of its pages, zeroed pages, unique pages. */
        void writeOwnPages(Guest guest, int g) {
            byte[] stamp = new byte[Long.BYTES * 2];
            int written = Math.min(imagePages, pagesPerGuest / 20);
            long stride = Math.max(1, imagePages / Math.max(1, written));
            for (int w = 0; w < written; w++) {
                long page = (w * stride + g) % imagePages;
                java.nio.ByteBuffer.wrap(stamp).putLong(g).putLong(page);
                guest.write(page * PAGE, stamp, 0, stamp.length);
            }
            try (Arena local = Arena.ofConfined()) {
                MemorySegment zeros = local.allocate((long) zeroPages * PAGE);
                guest.write((long) imagePages * PAGE, zeros);
                MemorySegment page = local.allocate(PAGE);
                for (int p = imagePages + zeroPages; p < pagesPerGuest; p++) {
                    EngineWorkload.fillPage(page, (long) g << 32 | p);
                    guest.write((long) p * PAGE, page);
                }
            }
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
                guests[g].write(0, image.imageBytes);
                image.writeOwnPages(guests[g], g);
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
                    loader.load(guests[g], 0, 0, image.imagePages);
                    image.writeOwnPages(guests[g], g);
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
            read += empty.loader.load(guest, 0, 0, image.imagePages).blocksRead();
        }
        return read;
    }

    @Benchmark
    public EngineCounters preLoadScan(IndexLoaded loaded) {
        loaded.engine.scanner().scanUntilStable(Scanner.DEFAULT_MAX_FULL_SCANS_TO_SETTLE);
        return loaded.engine.counters();
    }
}
