package io.samepage.density;

import io.samepage.hashing.Pages;
import io.samepage.image.ImageIndexException;
import io.samepage.image.ImageLayout;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Arrays;
import java.util.SplittableRandom;

/**
 * The memory of the density suite's guests: the same bytes in every mode, generated from an image and a
 * seed, so (a) to (e) measure one workload.
 *
 * <h2>One guest, page by page</h2>
 * <ol>
 *   <li><b>Image</b>, pages {@code [0, imagePages)}: blocks {@code 0 .. imagePages-1} of the image, in
 *       image order, at the same guest addresses in every guest, as a booted OS holds the same files of
 *       the same image. {@value #IMAGE_PERCENT_BESIDES_UNIQUE}% minus the unique share of the guest by
 *       default (45% with the default 25% unique), capped by the image's size.</li>
 *   <li><b>Written after boot</b>: {@value #WRITTEN_AFTER_BOOT_PERCENT}% of the guest's pages, picked
 *       among its image pages (a seeded draw per guest), get {@value #STAMP_BYTES} bytes of their own at
 *       offset 0 after the image is loaded: kernel data and dirtied page cache, which no longer match
 *       any other guest's.</li>
 *   <li><b>Zeroed</b>: {@value #ZERO_PERCENT}% of the pages, written with zeros by the guest (a kernel
 *       that zeroes free memory), plus whatever image share the image was too small to fill.</li>
 *   <li><b>Unique</b>: {@code P}% ({@code --unique-percent}, default {@value #DEFAULT_UNIQUE_PERCENT}),
 *       pseudo-random bytes of this guest alone (heap, stacks, the guest's own data).</li>
 * </ol>
 * Every page is written, so with no deduplication every guest page holds a frame.
 *
 * <h2>Why this mix</h2>
 * The suite measures the case the density claim is about: N guests booted from one image, the VM
 * counterpart of N containers of one image. With the defaults 70% of a guest's pages can be shared (45%
 * image, 25% zero) and 30% are its own (25% unique, 5% written after boot), the mix {@code samepage
 * demo} uses. For guests this alike, published figures put sharing well above 30%: VMware's vSphere
 * documentation ("Memory Sharing") says a workload of many nearly identical virtual machines "might free
 * up more than thirty percent of memory", and Gupta et al. (Difference Engine, OSDI 2008) report up to
 * 90% savings between VMs running similar operating systems and applications, with sub-page patching
 * and compression on top of whole-page sharing. Barker et al. ("An Empirical Study of Memory Sharing in
 * Virtual Machines", USENIX ATC 2012) measured real, dissimilar machines and found sharing outside zero
 * pages generally under 15%, most of it within one machine: a case this suite does not model. So 25%
 * unique is a choice within the published range for similar guests, not a measurement; {@code
 * --unique-percent} shows how density moves with it.
 *
 * <p>The image pages are read from the image's files once, into memory of this object; the modes copy
 * them from there. Thread safety: immutable after construction, safe for concurrent readers until
 * closed.
 */
public final class GuestContent implements AutoCloseable {

    static final int ZERO_PERCENT = 25;
    static final int WRITTEN_AFTER_BOOT_PERCENT = 5;
    public static final int DEFAULT_UNIQUE_PERCENT = 25;
    /** Image (written-after-boot pages included) plus unique: what is left besides the zeroed pages. */
    static final int IMAGE_PERCENT_BESIDES_UNIQUE = 100 - ZERO_PERCENT;
    /** The largest unique share that leaves room for the pages written after boot. */
    public static final int MAX_UNIQUE_PERCENT = 100 - ZERO_PERCENT - WRITTEN_AFTER_BOOT_PERCENT;
    public static final long DEFAULT_SEED = 0x5A3E_9A6E_2008_0006L;
    /** Bytes each write after boot changes, at offset 0 of the page. */
    static final int STAMP_BYTES = 64;

    private static final int PAGE = Pages.PAGE_SIZE;
    private static final long UNIQUE_STREAM = 1;
    private static final long STAMP_STREAM = 2;
    private static final long WRITTEN_STREAM = 3;

    /** A page's part of the mix, as the guest holds it after boot. */
    enum Kind { IMAGE, WRITTEN_AFTER_BOOT, ZERO, UNIQUE }

    private final Path image;
    private final int guests;
    private final int pagesPerGuest;
    private final int uniquePercent;
    private final long seed;
    private final long imageBlocks;
    private final int imagePages;
    private final int writtenPages;
    private final int uniquePages;
    private final int zeroPages;
    private final Arena arena;
    private final MemorySegment imageBytes;
    /** {@code written[g]}: guest g's image pages written after boot, ascending. */
    private final int[][] written;

    /**
     * Reads the image's first blocks and draws every guest's writes after boot.
     *
     * @throws DensityException {@link DensityException.Kind#BAD_IMAGE} if the image cannot be laid out or read
     */
    GuestContent(Path image, int guests, int guestMib, int uniquePercent, long seed) {
        this.image = image;
        this.guests = guests;
        this.pagesPerGuest = (int) (((long) guestMib << 20) / PAGE);
        this.uniquePercent = uniquePercent;
        this.seed = seed;
        ImageLayout layout;
        try {
            layout = ImageLayout.of(image);
        } catch (ImageIndexException e) {
            throw DensityException.badImage(e.getMessage());
        }
        this.imageBlocks = layout.blockCount();
        this.uniquePages = (int) ((long) pagesPerGuest * uniquePercent / 100);
        int wanted = (int) ((long) pagesPerGuest * (IMAGE_PERCENT_BESIDES_UNIQUE - uniquePercent) / 100);
        this.imagePages = (int) Math.min(wanted, imageBlocks);
        this.writtenPages = Math.min(imagePages, (int) ((long) pagesPerGuest * WRITTEN_AFTER_BOOT_PERCENT / 100));
        this.zeroPages = pagesPerGuest - imagePages - uniquePages;
        this.arena = Arena.ofShared();
        this.imageBytes = arena.allocate(Math.max(1, (long) imagePages * PAGE), PAGE);
        try {
            readImage(layout);
        } catch (RuntimeException e) {
            arena.close();
            throw e;
        }
        this.written = new int[guests][];
        for (int g = 0; g < guests; g++) {
            written[g] = drawWritten(g);
        }
    }

    Path image() {
        return image;
    }

    int guests() {
        return guests;
    }

    int pagesPerGuest() {
        return pagesPerGuest;
    }

    long guestBytes() {
        return (long) pagesPerGuest * PAGE;
    }

    int uniquePercent() {
        return uniquePercent;
    }

    long seed() {
        return seed;
    }

    long imageBlocks() {
        return imageBlocks;
    }

    /** Image blocks each guest loads, written-after-boot pages included. */
    int imagePages() {
        return imagePages;
    }

    int writtenAfterBootPages() {
        return writtenPages;
    }

    int zeroPages() {
        return zeroPages;
    }

    int uniquePages() {
        return uniquePages;
    }

    /** Pages that are each guest's own: unique and written after boot. */
    int privatePages() {
        return uniquePages + writtenPages;
    }

    /** Guest g's image pages written after boot, ascending; do not modify. */
    int[] writtenAfterBoot(int guest) {
        return written[guest];
    }

    Kind kindOf(int guest, int page) {
        if (page < imagePages) {
            return Arrays.binarySearch(written[guest], page) >= 0 ? Kind.WRITTEN_AFTER_BOOT : Kind.IMAGE;
        }
        return page < imagePages + zeroPages ? Kind.ZERO : Kind.UNIQUE;
    }

    /** The image blocks every guest loads, {@code imagePages x 4096} bytes, read-only. */
    MemorySegment imageBytes() {
        return imageBytes.asSlice(0, (long) imagePages * PAGE).asReadOnly();
    }

    /** The {@value #STAMP_BYTES} bytes guest g writes at offset 0 of image page {@code page} after boot. */
    void stamp(int guest, int page, byte[] into) {
        random(mix(STAMP_STREAM, (long) guest * pagesPerGuest + page), into, STAMP_BYTES);
    }

    /** The content of guest g's unique page {@code page}. */
    void uniquePage(int guest, int page, byte[] into) {
        random(mix(UNIQUE_STREAM, (long) guest * pagesPerGuest + page), into, PAGE);
    }

    /** The 4096 bytes guest g holds at {@code page} after boot, in every mode. */
    void page(int guest, int page, byte[] into) {
        switch (kindOf(guest, page)) {
            case IMAGE -> MemorySegment.copy(imageBytes, ValueLayout.JAVA_BYTE, (long) page * PAGE, into, 0, PAGE);
            case WRITTEN_AFTER_BOOT -> {
                MemorySegment.copy(imageBytes, ValueLayout.JAVA_BYTE, (long) page * PAGE, into, 0, PAGE);
                byte[] stamp = new byte[STAMP_BYTES];
                stamp(guest, page, stamp);
                System.arraycopy(stamp, 0, into, 0, STAMP_BYTES);
            }
            case ZERO -> Arrays.fill(into, (byte) 0);
            case UNIQUE -> uniquePage(guest, page, into);
        }
    }

    @Override
    public void close() {
        arena.close();
    }

    private void readImage(ImageLayout layout) {
        long end = (long) imagePages * PAGE;
        for (ImageLayout.Extent extent : layout.extents()) {
            if (extent.imageOffset() >= end) {
                break;
            }
            Path file = layout.pathOf(extent);
            long length = Math.min(extent.length(), end - extent.imageOffset());
            try (FileChannel channel = FileChannel.open(file, StandardOpenOption.READ)) {
                var into = imageBytes.asSlice(extent.imageOffset(), length).asByteBuffer();
                while (into.hasRemaining()) {
                    if (channel.read(into, into.position()) < 0) {
                        throw DensityException.badImage(file
                                + " is shorter than when it was laid out; did the image change?");
                    }
                }
            } catch (IOException e) {
                throw DensityException.badImage("cannot read " + file + ": " + e.getMessage());
            }
        }
    }

    private int[] drawWritten(int guest) {
        int[] pages = new int[imagePages];
        for (int i = 0; i < imagePages; i++) {
            pages[i] = i;
        }
        SplittableRandom random = new SplittableRandom(mix(WRITTEN_STREAM, guest));
        for (int i = 0; i < writtenPages; i++) {
            int j = i + random.nextInt(imagePages - i);
            int t = pages[i];
            pages[i] = pages[j];
            pages[j] = t;
        }
        int[] chosen = Arrays.copyOf(pages, writtenPages);
        Arrays.sort(chosen);
        return chosen;
    }

    private static void random(long seed, byte[] into, int length) {
        SplittableRandom random = new SplittableRandom(seed);
        for (int i = 0; i < length; i += Long.BYTES) {
            long v = random.nextLong();
            for (int b = 0; b < Long.BYTES; b++) {
                into[i + b] = (byte) (v >>> (8 * b));
            }
        }
    }

    /** A seed for one (stream, index) pair: SplittableRandom's seeds must not be close to each other. */
    private long mix(long stream, long index) {
        long z = seed ^ (stream * 0x9E37_79B9_7F4A_7C15L) ^ (index * 0xC2B2_AE3D_27D4_EB4FL);
        z = (z ^ (z >>> 33)) * 0xFF51_AFD7_ED55_8CCDL;
        z = (z ^ (z >>> 33)) * 0xC4CE_B9FE_1A85_EC53L;
        return z ^ (z >>> 33);
    }
}
