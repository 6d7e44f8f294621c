package io.samepage.cli;

import io.samepage.core.DedupEngine;
import io.samepage.core.DedupException;
import io.samepage.core.EngineContext;
import io.samepage.core.Guest;
import io.samepage.core.MergeDomain;
import io.samepage.daemon.IoErrors;
import io.samepage.hashing.Pages;
import io.samepage.image.ImageIndex;
import io.samepage.image.ImageIndexException;
import io.samepage.image.ImageLayout;
import io.samepage.image.ImageLoader;
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
import java.util.List;

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
 * After each part every guest's memory is compared with the image's files at every
 * {@value #SAMPLE_EVERY_BLOCKS}th block (the reads go to the files directly, not through the index or
 * the loader): a guest that reads back other bytes fails the demo (exit 1).
 *
 * <p>Each part's engine has a frame pool just large enough for it, and the first engine is closed,
 * its memory returned, before the second starts.
 *
 * <p>Not thread safe: one thread runs it.
 */
final class ImageBoot {

    /** Every this many blocks, each guest's memory is compared with the image's files. */
    static final int SAMPLE_EVERY_BLOCKS = 97;

    /** Frames in each pool beyond the image's blocks: the zero frame and a little room. */
    private static final long POOL_SLACK_FRAMES = 16;

    /** How the demo came by its index. */
    enum IndexOrigin {
        /** Built from the image in this process, never written (no {@code --index}). */
        BUILT_IN_MEMORY,
        /** Opened from {@code --index FILE} and found to describe the image. */
        OPENED,
        /** Built from the image and written to {@code --index FILE} (it did not exist, or {@code --rebuild}). */
        BUILT_AND_WRITTEN
    }

    /** One guest's load. */
    record GuestLoad(String guest, LoadStats stats) {
    }

    /**
     * One part of the boot.
     *
     * @param loads          each guest's load, in order
     * @param framesInUse    host frames in use after every guest loaded, the zero frame included
     * @param residentFrames frames in the domain's resident registry (0 without the index)
     * @param blocksVerified guest blocks compared with the image's files afterwards
     */
    record Part(List<GuestLoad> loads, long framesInUse, long residentFrames, long blocksVerified) {

        /** The first guest's load time over the median of the later guests'. */
        double firstToLaterLoadRatio() {
            long[] later = new long[loads.size() - 1];
            for (int i = 1; i < loads.size(); i++) {
                later[i - 1] = loads.get(i).stats().loadNanos();
            }
            Arrays.sort(later);
            int n = later.length;
            double median = n % 2 == 1 ? later[n / 2] : (later[n / 2 - 1] + later[n / 2]) / 2.0;
            return loads.getFirst().stats().loadNanos() / Math.max(1.0, median);
        }

        /** Blocks the later guests read over the blocks they loaded, 0 to 1. */
        double laterReadFraction() {
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
     * What the boot did.
     *
     * @param image          the image as given
     * @param layout         its layout
     * @param zeroBlocks     its all-zero blocks
     * @param distinctBlocks its distinct non-zero blocks, or -1 if not counted ({@link DistinctBlocks})
     * @param origin         how the index came to be
     * @param indexFile      {@code --index}, or null
     * @param indexNanos     time to build, or open and check, the index
     * @param without        the guests without the index
     * @param with           the guests with the index
     */
    record Result(Path image, ImageLayout layout, long zeroBlocks, long distinctBlocks, IndexOrigin origin,
            Path indexFile, long indexNanos, Part without, Part with) {
    }

    private ImageBoot() {
    }

    /**
     * Runs both parts with {@code guests} guests.
     *
     * @param indexFile null to build the index in memory; else opened if it exists and {@code rebuild}
     *                  is false, built and written otherwise
     * @throws CommandException exit 2 for an image or index that cannot be used or guests that would not
     *                          fit this host; exit 1 for a failure while loading or a guest that reads
     *                          back other bytes than the image
     */
    static Result run(Path image, Path indexFile, boolean rebuild, int guests, long hostMemoryBytes) {
        long start = System.nanoTime();
        IndexOrigin origin = indexFile == null ? IndexOrigin.BUILT_IN_MEMORY
                : !rebuild && Files.exists(indexFile) ? IndexOrigin.OPENED : IndexOrigin.BUILT_AND_WRITTEN;
        ImageIndex index;
        try {
            if (origin == IndexOrigin.BUILT_AND_WRITTEN) {
                ImageIndex.checkWritable(indexFile, image);
            } else if (origin == IndexOrigin.OPENED) {
                ImageIndex.checkReadable(indexFile);
            }
            checkFits(image, ImageLayout.of(image).blockCount(), guests, hostMemoryBytes);
            index = origin == IndexOrigin.OPENED ? ImageIndex.open(indexFile, image) : ImageIndex.build(image);
        } catch (ImageIndexException e) {
            throw IndexFiles.toCommandException(e);
        } catch (UncheckedIOException e) {
            throw IndexFiles.unreadable(e);
        }
        try (index) {
            if (origin == IndexOrigin.BUILT_AND_WRITTEN) {
                writeIndex(index, indexFile);
            }
            long indexNanos = System.nanoTime() - start;
            ImageLayout layout = index.layout();
            Part without = withoutIndex(layout, guests);
            Part with = withIndex(index, guests);
            return new Result(image, layout, index.zeroBlocks(), DistinctBlocks.count(index), origin, indexFile,
                    indexNanos, without, with);
        } catch (ImageIndexException | DedupException e) {
            // While loading: a block that no longer matches its digest, a read that failed, a full pool.
            throw CommandException.failure(e.getMessage());
        }
    }

    private static void writeIndex(ImageIndex index, Path indexFile) {
        try {
            index.writeTo(indexFile);
        } catch (ImageIndexException e) {
            throw IndexFiles.toCommandException(e);
        }
    }

    /** Without the index, every guest holds a copy of the image: refuse what this host cannot hold. */
    private static void checkFits(Path image, long blocks, int guests, long hostMemoryBytes) {
        if (blocks > Integer.MAX_VALUE - 8) {
            throw CommandException.badInput("--image " + image + ": " + blocks + " blocks of 4 KiB are more than "
                    + "a guest holds (" + (Integer.MAX_VALUE - 8) + " pages)");
        }
        long needed = guests * blocks * Pages.PAGE_SIZE;
        if (guests * blocks + POOL_SLACK_FRAMES > Integer.MAX_VALUE || needed > hostMemoryBytes) {
            throw CommandException.badInput("--image " + image + " --guests " + guests + ": without the index the "
                    + "guests need " + (needed >> 20) + " MiB of host memory, a copy of the image each; this host "
                    + "has " + (hostMemoryBytes >> 20) + " MiB. Use fewer guests or a smaller image");
        }
    }

    private static Part withoutIndex(ImageLayout layout, int guests) {
        long blocks = layout.blockCount();
        EngineContext context = new EngineContext().poolBytes((guests * blocks + POOL_SLACK_FRAMES) * Pages.PAGE_SIZE);
        try (DedupEngine engine = DedupEngine.create(context.conclude())) {
            MergeDomain domain = engine.createDomain("image");
            List<Guest> loaded = new ArrayList<>();
            List<GuestLoad> loads = new ArrayList<>();
            for (int g = 0; g < guests; g++) {
                Guest guest = engine.createGuest(domain, "vm-" + (g + 1), blocks * Pages.PAGE_SIZE);
                loads.add(new GuestLoad(guest.name(), ImageLoader.loadWithoutIndex(layout, guest, 0)));
                loaded.add(guest);
            }
            long frames = engine.framesInUse();
            long verified = verifySample(layout, loaded, "without the index");
            return new Part(loads, frames, domain.residentFrames(), verified);
        }
    }

    private static Part withIndex(ImageIndex index, int guests) {
        ImageLayout layout = index.layout();
        long blocks = layout.blockCount();
        EngineContext context = new EngineContext().poolBytes((blocks + POOL_SLACK_FRAMES) * Pages.PAGE_SIZE);
        try (DedupEngine engine = DedupEngine.create(context.conclude());
                ImageLoader loader = new ImageLoader(index, engine)) {
            MergeDomain domain = engine.createDomain("image");
            List<Guest> loaded = new ArrayList<>();
            List<GuestLoad> loads = new ArrayList<>();
            for (int g = 0; g < guests; g++) {
                Guest guest = engine.createGuest(domain, "vm-" + (g + 1), blocks * Pages.PAGE_SIZE);
                loads.add(new GuestLoad(guest.name(), loader.loadAll(guest, 0)));
                loaded.add(guest);
            }
            long frames = engine.framesInUse();
            long verified = verifySample(layout, loaded, "with the index");
            return new Part(loads, frames, domain.residentFrames(), verified);
        }
    }

    /**
     * Compares every guest's memory with the image's files at every {@link #SAMPLE_EVERY_BLOCKS}th block,
     * reading the files directly.
     *
     * @return guest blocks compared
     * @throws CommandException (exit 1) naming the first guest block that reads other bytes
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
                    throw CommandException.failure("guest " + guest.name() + " " + part + ": block " + b + " ("
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
                    throw CommandException.failure(file + ": shorter than when the demo loaded it; the image "
                            + "changed while the demo ran");
                }
            }
        } catch (IOException e) {
            throw CommandException.failure(file + ": cannot read it to check the guests: " + IoErrors.reason(e));
        }
    }
}
