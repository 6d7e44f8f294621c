package io.samepage.density;

import io.samepage.core.DedupEngine;
import io.samepage.core.DedupException;
import io.samepage.core.EngineContext;
import io.samepage.core.Guest;
import io.samepage.core.MergeDomain;
import io.samepage.hashing.Pages;
import io.samepage.image.DistinctBlocks;
import io.samepage.image.ImageIndex;
import io.samepage.image.ImageIndexException;
import io.samepage.image.ImageLayout;
import io.samepage.image.ImageLoader;
import io.samepage.image.IoReason;
import io.samepage.image.LoadStats;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;

/**
 * The first part of {@code samepage demo}: guests boot from one image, first without the pre-load
 * index, then with it.
 *
 * <ol>
 *   <li>Without: each guest reads every block of the image into its memory
 *       ({@link ImageLoader#loadWithoutIndex}), as a guest without Samepage does. The host holds a
 *       copy of the image per guest.</li>
 *   <li>With: in a fresh engine, each guest loads the image through {@link ImageLoader#loadAll}: a zero
 *       block maps the zero frame, a block whose content (SHA-256) is resident in the domain maps that
 *       frame copy-on-write, and only the others are read, checked against their digest and registered.
 *       The first guest reads each distinct non-zero block once; the later ones read nothing, and the
 *       host holds one copy of the image's distinct non-zero blocks however many guests there are.</li>
 * </ol>
 * Before the parts, one guest loads the image each way in an engine of its own, twice, unrecorded in the
 * parts ({@link WarmUp}): the JVM compiles each way's code during its first loads, on the same processors,
 * so without it the parts would set a first load with the index that pays the compilers against loads
 * without it that mostly do not. After each part every guest's memory is compared with the image's files at every
 * {@value #SAMPLE_EVERY_BLOCKS}th block (the reads go to the files directly, not through the index or
 * the loader): a guest that reads back other bytes fails the demo ({@link DensityException.Kind#FAILED}).
 *
 * <p>Each part's engine has a frame pool just large enough for it, and the first engine is closed,
 * its memory returned, before the second starts. The CLI's {@code demo} command holds only its options
 * and prints the {@link Result}.
 *
 * <p>Not thread safe: one thread runs it.
 */
public final class ImageBoot {

    /** Every this many blocks, each guest's memory is compared with the image's files. */
    public static final int SAMPLE_EVERY_BLOCKS = 97;

    /** Frames in each pool beyond the image's blocks: the zero frame and a little room. */
    private static final long POOL_SLACK_FRAMES = 16;

    /** How the demo came by its index. */
    public enum IndexOrigin {
        /** Built from the image in this process, never written (no {@code --index}). */
        BUILT_IN_MEMORY,
        /** Opened from {@code --index FILE} and found to describe the image. */
        OPENED,
        /** Built from the image and written to {@code --index FILE} (it did not exist, or {@code --rebuild}). */
        BUILT_AND_WRITTEN
    }

    /**
     * One guest's load.
     *
     * @param compileNanos how long the JVM's JIT compilers worked while it loaded (their total
     *                     compilation time before and after, to the millisecond), or -1 where the JVM
     *                     does not measure it: a load that is the first of its kind in the JVM shares the
     *                     processors with the compilation of its code, later loads hardly do
     */
    public record GuestLoad(String guest, LoadStats stats, long compileNanos) {

        /** Loads one guest with {@code load}, measuring the JIT's compilation time beside it. */
        static GuestLoad of(String guest, java.util.function.Supplier<LoadStats> load) {
            long before = compileMillis();
            LoadStats stats = load.get();
            long after = compileMillis();
            return new GuestLoad(guest, stats, before < 0 || after < 0 ? -1 : (after - before) * 1_000_000);
        }

        /** {@link #compileNanos} for {@code --json}: null where the JVM does not measure it. */
        Long compileNanosOrNull() {
            return compileNanos < 0 ? null : compileNanos;
        }

        /** The JIT compilers' total compilation time so far in milliseconds, or -1 if not measured. */
        private static long compileMillis() {
            java.lang.management.CompilationMXBean jit = java.lang.management.ManagementFactory.getCompilationMXBean();
            return jit != null && jit.isCompilationTimeMonitoringSupported() ? jit.getTotalCompilationTime() : -1;
        }
    }

    /**
     * One part of the boot.
     *
     * @param loads          each guest's load, in order
     * @param framesInUse    host frames in use after every guest loaded, the zero frame included
     * @param residentFrames frames in the domain's resident registry (0 without the index)
     * @param blocksVerified guest blocks compared with the image's files afterwards
     */
    public record Part(List<GuestLoad> loads, long framesInUse, long residentFrames, long blocksVerified) {

        public Part {
            loads = List.copyOf(loads);
        }

        /** Its guests' loads and frames under {@code demo --json}'s names; mapped blocks only {@code withIndex}. */
        Map<String, Object> fields(boolean withIndex) {
            List<Map<String, Object>> guests = new ArrayList<>();
            for (GuestLoad load : loads) {
                LoadStats s = load.stats();
                Map<String, Object> g = new LinkedHashMap<>();
                g.put("name", load.guest());
                g.put("blocks_read", s.blocksRead());
                if (withIndex) {
                    g.put("blocks_mapped", s.blocksMapped());
                    g.put("zero_blocks", s.zeroBlocks());
                }
                g.put("load_nanos", s.loadNanos());
                g.put("jit_compile_nanos", load.compileNanosOrNull());
                guests.add(g);
            }
            Map<String, Object> f = new LinkedHashMap<>();
            f.put("guests", guests);
            f.put("host_frames_in_use", framesInUse);
            f.put("host_frame_bytes", framesInUse * Pages.PAGE_SIZE);
            if (withIndex) {
                f.put("resident_frames", residentFrames);
            }
            return f;
        }

        /** The first guest's load time over the median of the later guests'. */
        public double firstToLaterLoadRatio() {
            return loads.getFirst().stats().loadNanos() / Math.max(1.0, medianLoadNanos(1));
        }

        /** The median load time of the guests from {@code from} on, in nanoseconds. */
        public double medianLoadNanos(int from) {
            long[] nanos = new long[loads.size() - from];
            for (int i = from; i < loads.size(); i++) {
                nanos[i - from] = loads.get(i).stats().loadNanos();
            }
            Arrays.sort(nanos);
            int n = nanos.length;
            return n % 2 == 1 ? nanos[n / 2] : (nanos[n / 2 - 1] + nanos[n / 2]) / 2.0;
        }

        /** Blocks the later guests read over the blocks they loaded, 0 to 1. */
        public double laterReadFraction() {
            long read = 0;
            long blocks = 0;
            for (int i = 1; i < loads.size(); i++) {
                read += loads.get(i).stats().blocksRead();
                blocks += loads.get(i).stats().blocks();
            }
            return blocks == 0 ? 0 : (double) read / blocks;
        }
    }

    /**
     * The loads before the parts, each in an engine of its own, during which the JVM compiles the code the
     * parts then run: one guest without the index, one with it ({@code without} and {@code with}, the cold
     * loads), then the same again ({@code againWithout}, {@code againWith}). One round left the compilers
     * at work for a fifth to a half of the measured first load with the index (docs/perf/image-load.md,
     * twenty-ninth session).
     */
    public record WarmUp(GuestLoad without, GuestLoad with, GuestLoad againWithout, GuestLoad againWith) {

        /** Rounds of one load each way: the record's two. */
        public static final int ROUNDS = 2;

        /** The cold load with the index over the cold load without it. */
        public double withToWithoutRatio() {
            return with.stats().loadNanos() / (double) Math.max(1, without.stats().loadNanos());
        }

        Map<String, Object> fields() {
            Map<String, Object> f = new LinkedHashMap<>();
            f.put("rounds", ROUNDS);
            putRound(f, without, with);
            f.put("with_to_without_index_ratio", withToWithoutRatio());
            Map<String, Object> again = new LinkedHashMap<>();
            putRound(again, againWithout, againWith);
            f.put("second_round", again);
            return f;
        }

        /** One round's two loads: their times, and the compilers' time during each. */
        private static void putRound(Map<String, Object> f, GuestLoad without, GuestLoad with) {
            f.put("without_index_nanos", without.stats().loadNanos());
            f.put("without_index_jit_compile_nanos", without.compileNanosOrNull());
            f.put("with_index_nanos", with.stats().loadNanos());
            f.put("with_index_jit_compile_nanos", with.compileNanosOrNull());
        }
    }

    /**
     * What the boot did.
     *
     * @param image          the image as given
     * @param layout         its layout
     * @param zeroBlocks     its all-zero blocks
     * @param distinctBlocks its distinct non-zero blocks, or -1 if not counted
     * @param origin         how the index came to be
     * @param indexFile      the index file, or null
     * @param indexNanos     time to build, or open and check, the index
     * @param without        the guests without the index
     * @param with           the guests with the index
     * @param loaderThreads  the threads that read and hashed blocks with the index ({@link ImageLoader#threads()})
     * @param warmUp         the cold loads before the parts
     */
    public record Result(Path image, ImageLayout layout, long zeroBlocks, long distinctBlocks, IndexOrigin origin,
            Path indexFile, long indexNanos, Part without, Part with, int loaderThreads, WarmUp warmUp) {

        /**
         * The first guest's load with the index over the median load without it: what reading, checking
         * and registering every distinct block costs against reading them all, both after the {@link WarmUp}.
         */
        public double firstLoadToWithoutIndexRatio() {
            return with.loads().getFirst().stats().loadNanos() / Math.max(1.0, without.medianLoadNanos(0));
        }

        /** The figures under the names {@code samepage demo --json} prints, in order (null: not counted). */
        public Map<String, Object> fields() {
            Map<String, Object> f = new LinkedHashMap<>();
            f.put("path", image.toString());
            f.put("source_kind", layout.kind().name().toLowerCase(Locale.ROOT));
            f.put("files", layout.extents().size());
            f.put("source_size_bytes", layout.sizeBytes());
            f.put("block_count", layout.blockCount());
            f.put("zero_blocks", zeroBlocks);
            f.put("distinct_nonzero_blocks", distinctBlocks < 0 ? null : distinctBlocks);
            f.put("index_origin", origin.name().toLowerCase(Locale.ROOT));
            f.put("index_file", indexFile == null ? null : indexFile.toString());
            f.put("index_nanos", indexNanos);
            f.put("without_index", without.fields(false));
            f.put("with_index", with.fields(true));
            f.put("loader_threads", loaderThreads);
            f.put("first_load_with_index_nanos", with.loads().getFirst().stats().loadNanos());
            f.put("median_load_without_index_nanos", Math.round(without.medianLoadNanos(0)));
            f.put("first_load_to_without_index_ratio", firstLoadToWithoutIndexRatio());
            f.put("first_to_later_load_ratio", with.firstToLaterLoadRatio());
            f.put("warm_up", warmUp.fields());
            f.put("later_guests_read_fraction", with.laterReadFraction());
            f.put("sample_every_blocks", SAMPLE_EVERY_BLOCKS);
            f.put("blocks_verified", without.blocksVerified() + with.blocksVerified());
            return f;
        }
    }

    /**
     * What to boot.
     *
     * @param image           the image the guests boot from: a file or a directory tree
     * @param indexFile       null to build the index in memory; else opened if it exists and
     *                        {@code rebuild} is false, built and written otherwise
     * @param rebuild         with an index file: build and write it even if it exists
     * @param guests          guests in each part, at least 2: the later guests' loads are compared with
     *                        the first's
     * @param hostMemoryBytes the host's memory, which the guests without the index must fit in
     */
    public record Settings(Path image, Path indexFile, boolean rebuild, int guests, long hostMemoryBytes) {

        public Settings {
            Objects.requireNonNull(image, "image");
            if (rebuild && indexFile == null) {
                throw new IllegalArgumentException("rebuild: rebuilds the index file, and none was given");
            }
            if (guests < 2 || hostMemoryBytes < 1) {
                throw new IllegalArgumentException("guests " + guests + ", hostMemoryBytes " + hostMemoryBytes
                        + ": at least 2 guests and 1 byte");
            }
        }
    }

    private ImageBoot() {
    }

    /**
     * Runs both parts. A refusal names the image and the guests as {@code samepage demo}'s options do
     * ({@code --image}, {@code --guests}), so the CLI prints it as it is.
     *
     * @throws DensityException {@link DensityException.Kind#BAD_IMAGE} for an image that cannot be laid
     *                          out, read or indexed, {@link DensityException.Kind#BAD_INDEX} for an index
     *                          file that cannot be used, {@link DensityException.Kind#TOO_LARGE} for guests
     *                          that would not fit this host, {@link DensityException.Kind#FAILED} for a
     *                          failure while loading or a guest that reads back other bytes than the image
     */
    public static Result run(Settings settings) {
        Path image = settings.image();
        Path indexFile = settings.indexFile();
        long start = System.nanoTime();
        IndexOrigin origin = indexFile == null ? IndexOrigin.BUILT_IN_MEMORY
                : !settings.rebuild() && Files.exists(indexFile) ? IndexOrigin.OPENED : IndexOrigin.BUILT_AND_WRITTEN;
        try {
            if (origin == IndexOrigin.BUILT_AND_WRITTEN) {
                ImageIndex.checkWritable(indexFile, image);
            } else if (origin == IndexOrigin.OPENED) {
                ImageIndex.checkReadable(indexFile);
            }
        } catch (ImageIndexException e) {
            throw fromIndex(e, DensityException.Kind.BAD_INDEX);
        }
        ImageIndex index;
        try {
            checkFits(image, ImageLayout.of(image).blockCount(), settings.guests(), settings.hostMemoryBytes());
            index = origin == IndexOrigin.OPENED ? open(indexFile, image) : ImageIndex.build(image);
        } catch (ImageIndexException e) {
            throw fromIndex(e, DensityException.Kind.BAD_IMAGE);
        } catch (UncheckedIOException e) {
            // A directory of the image that cannot be listed.
            throw DensityException.badImage(IoReason.withFile(e.getCause()));
        }
        try (index) {
            if (origin == IndexOrigin.BUILT_AND_WRITTEN) {
                write(index, indexFile);
            }
            long indexNanos = System.nanoTime() - start;
            ImageLayout layout = index.layout();
            int threads = ImageLoader.defaultThreads();
            GuestLoad coldWithout = withoutIndex(layout, 1, " (warm-up)").loads().getFirst();
            GuestLoad coldWith = withIndex(index, 1, threads, " (warm-up)").loads().getFirst();
            WarmUp warmUp = new WarmUp(coldWithout, coldWith, withoutIndex(layout, 1, " (warm-up)").loads().getFirst(),
                    withIndex(index, 1, threads, " (warm-up)").loads().getFirst());
            Part without = withoutIndex(layout, settings.guests(), "");
            Part with = withIndex(index, settings.guests(), threads, "");
            return new Result(image, layout, index.zeroBlocks(), DistinctBlocks.count(index), origin,
                    indexFile, indexNanos, without, with, threads, warmUp);
        } catch (ImageIndexException | DedupException e) {
            // While loading: a block that no longer matches its digest, a read that failed, a full pool.
            throw DensityException.failed(e.getMessage());
        }
    }

    /** Opens the index file; an error in the file itself is the index's, one in the image the image's. */
    private static ImageIndex open(Path indexFile, Path image) {
        try {
            return ImageIndex.open(indexFile, image);
        } catch (ImageIndexException e) {
            throw fromIndex(e, DensityException.Kind.BAD_INDEX);
        }
    }

    private static void write(ImageIndex index, Path indexFile) {
        try {
            index.writeTo(indexFile);
        } catch (ImageIndexException e) {
            throw fromIndex(e, DensityException.Kind.BAD_INDEX);
        }
    }

    /**
     * An image-index error as this module's: a block that no longer matches its digest, or an index file
     * that could not be written once checked, is a failure while working; a foreign, wrong-version, corrupt or stale index is the index file's fault; a missing,
     * empty or unusable source is the image's; an I/O error is {@code io}'s, the file being read or written.
     */
    private static DensityException fromIndex(ImageIndexException e, DensityException.Kind io) {
        DensityException.Kind kind = switch (e.kind()) {
            case BLOCK_MISMATCH, WRITE -> DensityException.Kind.FAILED;
            case FOREIGN, VERSION, CORRUPT, STALE -> DensityException.Kind.BAD_INDEX;
            case BAD_SOURCE -> DensityException.Kind.BAD_IMAGE;
            case IO -> io;
        };
        return new DensityException(kind, e.getMessage());
    }

    /** Without the index, every guest holds a copy of the image: refuse what this host cannot hold. */
    private static void checkFits(Path image, long blocks, int guests, long hostMemoryBytes) {
        if (blocks > Integer.MAX_VALUE - 8) {
            throw DensityException.tooLarge("--image " + image + ": " + blocks + " blocks of 4 KiB are more than "
                    + "a guest holds (" + (Integer.MAX_VALUE - 8) + " pages)");
        }
        long needed = guests * blocks * Pages.PAGE_SIZE;
        if (guests * blocks + POOL_SLACK_FRAMES > Integer.MAX_VALUE || needed > hostMemoryBytes) {
            throw DensityException.tooLarge("--image " + image + " --guests " + guests + ": without the index the "
                    + "guests need " + (needed >> 20) + " MiB of host memory, a copy of the image each; this host "
                    + "has " + (hostMemoryBytes >> 20) + " MiB. Use fewer guests or a smaller image");
        }
    }

    /** @param label added to the part's name in a failure: " (warm-up)" for the warm-up's load */
    private static Part withoutIndex(ImageLayout layout, int guests, String label) {
        long blocks = layout.blockCount();
        EngineContext context = new EngineContext().poolBytes((guests * blocks + POOL_SLACK_FRAMES) * Pages.PAGE_SIZE);
        try (DedupEngine engine = DedupEngine.create(context.conclude())) {
            MergeDomain domain = engine.createDomain("image");
            List<Guest> loaded = new ArrayList<>();
            List<GuestLoad> loads = new ArrayList<>();
            for (int g = 0; g < guests; g++) {
                Guest guest = engine.createGuest(domain, "vm-" + (g + 1), blocks * Pages.PAGE_SIZE);
                loads.add(GuestLoad.of(guest.name(), () -> ImageLoader.loadWithoutIndex(layout, guest, 0)));
                loaded.add(guest);
            }
            long frames = engine.framesInUse();
            long verified = verifySample(layout, loaded, "without the index" + label);
            return new Part(loads, frames, domain.residentFrames(), verified);
        }
    }

    private static Part withIndex(ImageIndex index, int guests, int threads, String label) {
        ImageLayout layout = index.layout();
        long blocks = layout.blockCount();
        EngineContext context = new EngineContext().poolBytes((blocks + POOL_SLACK_FRAMES) * Pages.PAGE_SIZE);
        try (DedupEngine engine = DedupEngine.create(context.conclude());
                ImageLoader loader = new ImageLoader(index, engine, threads)) {
            MergeDomain domain = engine.createDomain("image");
            List<Guest> loaded = new ArrayList<>();
            List<GuestLoad> loads = new ArrayList<>();
            for (int g = 0; g < guests; g++) {
                Guest guest = engine.createGuest(domain, "vm-" + (g + 1), blocks * Pages.PAGE_SIZE);
                loads.add(GuestLoad.of(guest.name(), () -> loader.loadAll(guest, 0)));
                loaded.add(guest);
            }
            long frames = engine.framesInUse();
            long verified = verifySample(layout, loaded, "with the index" + label);
            return new Part(loads, frames, domain.residentFrames(), verified);
        }
    }

    /**
     * Compares every guest's memory with the image's files at every {@link #SAMPLE_EVERY_BLOCKS}th block,
     * reading the files directly.
     *
     * @return guest blocks compared
     * @throws DensityException {@link DensityException.Kind#FAILED} naming the first guest block that
     *                          reads other bytes
     */
    private static long verifySample(ImageLayout layout, List<Guest> guests, String part) {
        ByteBuffer expected = ByteBuffer.allocate(Pages.PAGE_SIZE);
        byte[] actual = new byte[Pages.PAGE_SIZE];
        long compared = 0;
        for (long b = 0; b < layout.blockCount(); b += SAMPLE_EVERY_BLOCKS) {
            ImageLayout.Extent extent = layout.extents().get(layout.extentOfBlock(b));
            Path file = layout.pathOf(extent);
            long inFile = (b << Pages.PAGE_SHIFT) - extent.imageOffset();
            readBlock(file, inFile, extent.length(), expected);
            for (Guest guest : guests) {
                guest.read(b << Pages.PAGE_SHIFT, actual, 0, actual.length);
                if (!Arrays.equals(expected.array(), actual)) {
                    throw DensityException.failed("guest " + guest.name() + " " + part + ": block " + b + " ("
                            + file + ", byte " + inFile + ") does not read back the image's bytes: loading is "
                            + "broken, or the image changed while the demo ran");
                }
                compared++;
            }
        }
        return compared;
    }

    /** The 4 KiB block at {@code inFile} of {@code file}, zero-padded past the file's {@code length}. */
    private static void readBlock(Path file, long inFile, long length, ByteBuffer into) {
        Arrays.fill(into.array(), (byte) 0);
        into.clear().limit((int) Math.min(Pages.PAGE_SIZE, length - inFile));
        try (FileChannel channel = FileChannel.open(file, StandardOpenOption.READ)) {
            while (into.hasRemaining()) {
                if (channel.read(into, inFile + into.position()) < 0) {
                    throw DensityException.failed(file + ": shorter than when the demo loaded it; the image "
                            + "changed while the demo ran");
                }
            }
        } catch (IOException e) {
            throw DensityException.failed(file + ": cannot read it to check the guests: " + IoReason.withFile(e));
        }
    }
}
