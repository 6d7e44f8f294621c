package io.samepage.bench;

import io.samepage.linux.PageCache;
import io.samepage.core.DedupEngine;
import io.samepage.core.Guest;
import io.samepage.core.MergeDomain;
import io.samepage.hashing.ContentDigest;
import io.samepage.hashing.Pages;
import io.samepage.image.ImageIndex;
import io.samepage.image.ImageLayout;
import io.samepage.image.ImageLoader;
import io.samepage.image.LoadStats;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

/**
 * The part of {@link ImageLoadReport} that JMH cannot show: what the image is made of, how long its
 * index takes to build, and N guests loading it one after another into one engine, each writing a few
 * pages of its own right after its load, with {@link LoadStats} per guest and the engine's frames in
 * use before and after. Run once, in the report's own JVM, before the JMH forks.
 *
 * <p>Guest {@code g} writes {@value #WRITE_BYTES} bytes into each of {@code writesPerGuest} pages that
 * no other guest writes, so each write breaks one page's sharing and takes exactly one frame. A block
 * that guest 0 overwrote before guest 1 loaded, and that appears nowhere else in the image, has no
 * mapping left and is read again by guest 1: those are the only reads after the first guest.
 */
final class ImageLoadScenario {

    static final int WRITE_BYTES = 64;
    static final int WRITE_OFFSET = 256;
    static final int WARM_BUILDS = 3;

    /** What the image is made of. */
    record Composition(Path path, int files, long fileBytes, long laidOutBytes, long blocks, long zeroBlocks,
            long distinctNonZeroBlocks) {
    }

    /** Index build times, and the page cache around the build with the image dropped from it. */
    record Build(long[] warmNanos, long droppedNanos, long cachedBytesBefore, long cachedBytesAfterDrop,
            long indexBytes) {
    }

    /** One guest's load, and the engine's frames in use after its load and after its own writes. */
    record GuestLoad(String name, LoadStats stats, long framesAfterLoad, long framesAfterWrites) {
    }

    /** N guests: frames in use before the first and after the last, and what they are expected to be. */
    record Guests(int writesPerGuest, long framesBefore, long framesAfter, long residentFrames,
            List<GuestLoad> loads) {

        long ownWrites() {
            return (long) writesPerGuest * loads.size();
        }
    }

    record Result(Composition composition, Build build, Guests guests) {
    }

    private ImageLoadScenario() {
    }

    static Result run(Path image, int guests, int writesPerGuest, int loaderThreads) {
        long cachedBefore = cachedBytes(ImageLayout.of(image));
        long[] warm = new long[WARM_BUILDS];
        for (int i = 0; i < WARM_BUILDS; i++) {
            long start = System.nanoTime();
            ImageIndex.build(image).close();
            warm[i] = System.nanoTime() - start;
        }
        long droppedNanos = -1;
        long cachedAfterDrop = -1;
        ImageLayout layout = ImageLayout.of(image);
        if (PageCache.available()) {
            ImageLoadBenchmark.dropFromPageCache(layout);
            cachedAfterDrop = cachedBytes(layout);
        }
        long start = System.nanoTime();
        try (ImageIndex index = ImageIndex.build(image)) {
            if (cachedAfterDrop >= 0) {
                droppedNanos = System.nanoTime() - start;
            }
            Composition composition = composition(index);
            Build build = new Build(warm, droppedNanos, cachedBefore, cachedAfterDrop, index.sizeBytes());
            return new Result(composition, build, loadGuests(index, guests, writesPerGuest, loaderThreads));
        }
    }

    private static Composition composition(ImageIndex index) {
        ImageLayout layout = index.layout();
        long fileBytes = 0;
        for (ImageLayout.Extent extent : layout.extents()) {
            fileBytes += extent.length();
        }
        Set<ByteBuffer> distinct = new HashSet<>();
        for (long b = 0; b < index.blockCount(); b++) {
            if (!index.isZero(b)) {
                byte[] digest = new byte[ContentDigest.LENGTH];
                index.digest(b, digest, 0);
                distinct.add(ByteBuffer.wrap(digest));
            }
        }
        return new Composition(layout.root(), layout.extents().size(), fileBytes, layout.sizeBytes(),
                index.blockCount(), index.zeroBlocks(), distinct.size());
    }

    private static Guests loadGuests(ImageIndex index, int guests, int writesPerGuest, int loaderThreads) {
        long blocks = index.blockCount();
        long stride = Math.max(1, blocks / ((long) guests * writesPerGuest));
        List<GuestLoad> loads = new ArrayList<>();
        long ownWriteBytes = (long) guests * writesPerGuest * Pages.PAGE_SIZE;
        try (DedupEngine engine = ImageLoadBenchmark.newEngine(index, ownWriteBytes);
             ImageLoader loader = new ImageLoader(index, engine, loaderThreads)) {
            MergeDomain domain = engine.createDomain("image");
            long before = engine.framesInUse();
            byte[] stamp = new byte[WRITE_BYTES];
            for (int g = 0; g < guests; g++) {
                Guest guest = engine.createGuest(domain, "guest-" + g, index.sourceSizeBytes());
                LoadStats stats = loader.loadAll(guest, 0);
                long afterLoad = engine.framesInUse();
                for (int w = 0; w < writesPerGuest; w++) {
                    long page = ((long) g * writesPerGuest + w) * stride % blocks;
                    Arrays.fill(stamp, (byte) (g * 31 + w + 1));
                    guest.write((page << Pages.PAGE_SHIFT) + WRITE_OFFSET, stamp, 0, stamp.length);
                }
                loads.add(new GuestLoad(guest.name(), stats, afterLoad, engine.framesInUse()));
            }
            return new Guests(writesPerGuest, before, engine.framesInUse(), domain.residentFrames(), loads);
        }
    }

    /** Bytes of the image's files in the page cache now; -1 where that cannot be measured. */
    static long cachedBytes(ImageLayout layout) {
        if (!PageCache.available()) {
            return -1;
        }
        long cached = 0;
        for (ImageLayout.Extent extent : layout.extents()) {
            cached += PageCache.cachedBytes(layout.pathOf(extent));
        }
        return cached;
    }
}
