package io.samepage.density;

import io.samepage.core.Guest;
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
 * The memory of guests booted from one image, page by page: the one page mix of {@code samepage demo}
 * and of the density suite, generated from a seed so every run holds the same bytes.
 *
 * <h2>One guest, share by share</h2>
 * Each guest's pages fall into four shares. Counts are rounded down; the zeroed share takes the rest.
 * <ol>
 *   <li><b>Image</b>: the image's blocks {@code 0 .. imagePages-1}, the same bytes in every guest, as
 *       booted guests hold the same files of the same image. {@value #IMAGE_PERCENT_BESIDES_UNIQUE}% minus
 *       the unique share of the guest, capped by the image's size.</li>
 *   <li><b>Written after boot</b>: {@value #WRITTEN_AFTER_BOOT_PERCENT}% of the guest's pages, among its
 *       image pages, get {@value #STAMP_BYTES} bytes of their own at offset 0 after the image is loaded:
 *       kernel data and dirtied page cache, which no longer match any other guest's.</li>
 *   <li><b>Zeroed</b>: {@value #ZERO_PERCENT}% of the pages, written with zeros by the guest (a kernel
 *       that zeroes free memory), plus whatever image share the image was too small to fill.</li>
 *   <li><b>Unique</b>: {@code P}% (default {@value #DEFAULT_UNIQUE_PERCENT}), pseudo-random bytes of this
 *       guest alone (heap, stacks, the guest's own data).</li>
 * </ol>
 * Every page is written, so with no deduplication every guest page holds a frame. Memory a guest never
 * touched is left out: it costs no frame, merged or not.
 *
 * <h2>Two presets</h2>
 * The shares and how bytes are drawn are the same; the presets differ only where their uses differ.
 * <ul>
 *   <li>{@link #demo}: the image is pseudo-random pages drawn from the seed (the demo calls them its OS
 *       image), so its merge prints the same counters on every machine; each guest places its pages in
 *       its own seeded order, as merging finds equal content wherever it sits; every guest writes the
 *       same image pages after boot (the image's last ones), so the rest of the image is identical in
 *       every guest; seed {@link #DEMO_SEED}, default unique share.</li>
 *   <li>{@link #density}: the image is the first blocks of an image file, read once; every guest holds
 *       them at the same addresses, in image order, where an image index loads them; each guest draws
 *       its own pages to write after boot, as independent guests dirty different pages; seed and unique
 *       share as given.</li>
 * </ul>
 *
 * <h2>Why this mix</h2>
 * It is the case the density claim is about: N guests booted from one image, the VM counterpart of N
 * containers of one image. Published measurements of virtual machines that run the same operating
 * system report a large share of identical memory between them (Waldspurger, OSDI 2002; Gupta et al.,
 * Difference Engine, OSDI 2008; Wood et al., Memory Buddies, VEE 2009), and real, dissimilar machines
 * far less (Barker et al., USENIX ATC 2012); guests also hold many zeroed pages. The default shares are
 * a choice within that range for similar guests, not a measurement; docs/density.md gives the published
 * figures, and the suite's {@code --unique-percent} shows how density moves with the unique share.
 *
 * <p>Thread safety: immutable after construction, safe for concurrent readers until closed. Closing
 * frees the image's bytes; the sizes stay readable.
 */
public final class PageMix implements AutoCloseable {

    public static final int ZERO_PERCENT = 25;
    public static final int WRITTEN_AFTER_BOOT_PERCENT = 5;
    public static final int DEFAULT_UNIQUE_PERCENT = 25;
    /** Image (written-after-boot pages included) plus unique: what is left besides the zeroed pages. */
    public static final int IMAGE_PERCENT_BESIDES_UNIQUE = 100 - ZERO_PERCENT;
    /** The largest unique share that leaves room for the pages written after boot. */
    public static final int MAX_UNIQUE_PERCENT = 100 - ZERO_PERCENT - WRITTEN_AFTER_BOOT_PERCENT;
    /** Image pages no guest wrote after boot, with the default unique share: the demo's identical OS image. */
    public static final int DEFAULT_UNCHANGED_IMAGE_PERCENT =
            IMAGE_PERCENT_BESIDES_UNIQUE - DEFAULT_UNIQUE_PERCENT - WRITTEN_AFTER_BOOT_PERCENT;
    /** The density suite's default seed. */
    public static final long DEFAULT_SEED = 0x5A3E_9A6E_2008_0006L;
    /** The demo's seed. */
    public static final long DEMO_SEED = 0x5A3E_9A6E_2008_0002L;
    /** Bytes each write after boot changes, at offset 0 of the page. */
    public static final int STAMP_BYTES = 64;

    private static final int PAGE = Pages.PAGE_SIZE;
    private static final long UNIQUE_STREAM = 1;
    private static final long STAMP_STREAM = 2;
    private static final long WRITTEN_STREAM = 3;
    private static final long IMAGE_STREAM = 4;
    private static final long PLACEMENT_STREAM = 5;

    /** A page's share of the mix, as the guest holds it after boot. */
    public enum Kind { IMAGE, WRITTEN_AFTER_BOOT, ZERO, UNIQUE }

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
    /** The image's blocks, read from its files; null for the demo's pseudo-random image. */
    private final Arena arena;
    private final MemorySegment imageBytes;
    /**
     * {@code slots[g][page]}: the page's place in the shares above (image, then zeroed, then unique); null
     * where every guest holds them in that order, so a page's slot is its number.
     */
    private final int[][] slots;
    /** {@code written[g]}: guest g's pages written after boot, ascending. */
    private final int[][] written;

    private PageMix(Path image, ImageLayout layout, int guests, int pagesPerGuest, int uniquePercent, long seed,
            boolean demo) {
        if (guests < 1 || pagesPerGuest < 1 || uniquePercent < 0 || uniquePercent > MAX_UNIQUE_PERCENT) {
            throw new IllegalArgumentException("guests " + guests + ", pagesPerGuest " + pagesPerGuest
                    + ", uniquePercent " + uniquePercent + ": guests and pages at least 1, unique 0 to "
                    + MAX_UNIQUE_PERCENT);
        }
        this.image = image;
        this.guests = guests;
        this.pagesPerGuest = pagesPerGuest;
        this.uniquePercent = uniquePercent;
        this.seed = seed;
        this.uniquePages = (int) ((long) pagesPerGuest * uniquePercent / 100);
        int wanted = (int) ((long) pagesPerGuest * (IMAGE_PERCENT_BESIDES_UNIQUE - uniquePercent) / 100);
        this.imageBlocks = layout == null ? wanted : layout.blockCount();
        this.imagePages = (int) Math.min(wanted, imageBlocks);
        this.writtenPages = Math.min(imagePages, (int) ((long) pagesPerGuest * WRITTEN_AFTER_BOOT_PERCENT / 100));
        this.zeroPages = pagesPerGuest - imagePages - uniquePages;
        this.arena = layout == null ? null : Arena.ofShared();
        try {
            this.imageBytes = arena == null ? null : arena.allocate(Math.max(1, (long) imagePages * PAGE), PAGE);
            if (layout != null) {
                readImage(layout);
            }
            this.slots = demo ? new int[guests][] : null;
            this.written = new int[guests][];
            for (int g = 0; g < guests; g++) {
                if (demo) {
                    slots[g] = shuffled(new SplittableRandom(mix(PLACEMENT_STREAM, g)), pagesPerGuest);
                }
                written[g] = writtenPagesOf(g, demo);
            }
        } catch (RuntimeException | Error e) {     // an OutOfMemoryError too: nothing else would free the image's bytes
            if (arena != null) {
                arena.close();
            }
            throw e;
        }
    }

    /**
     * The density suite's mix: the first blocks of {@code image}, at the same addresses in every guest,
     * and pages written after boot drawn per guest.
     *
     * @throws DensityException {@link DensityException.Kind#BAD_IMAGE} if the image cannot be laid out or read
     */
    public static PageMix density(Path image, int guests, int guestMib, int uniquePercent, long seed) {
        ImageLayout layout;
        try {
            layout = ImageLayout.of(image);
        } catch (ImageIndexException e) {
            throw DensityException.badImage(e.getMessage());
        }
        return new PageMix(image, layout, guests, (int) (((long) guestMib << 20) / PAGE), uniquePercent, seed,
                false);
    }

    /**
     * The demo's mix: a pseudo-random image, each guest's pages in its own order, and the same image pages
     * written after boot in every guest; {@link #DEMO_SEED}, the default unique share.
     */
    public static PageMix demo(int guests, int pagesPerGuest) {
        return new PageMix(null, null, guests, pagesPerGuest, DEFAULT_UNIQUE_PERCENT, DEMO_SEED, true);
    }

    /** The image file or directory of a {@link #density} mix; null for the demo's. */
    public Path image() {
        return image;
    }

    public int guests() {
        return guests;
    }

    public int pagesPerGuest() {
        return pagesPerGuest;
    }

    public long guestBytes() {
        return (long) pagesPerGuest * PAGE;
    }

    public int uniquePercent() {
        return uniquePercent;
    }

    public long seed() {
        return seed;
    }

    /** Blocks of the whole image; for the demo's, its image pages. */
    public long imageBlocks() {
        return imageBlocks;
    }

    /** Image blocks each guest loads, written-after-boot pages included. */
    public int imagePages() {
        return imagePages;
    }

    public int writtenAfterBootPages() {
        return writtenPages;
    }

    /** Image pages each guest holds as the image has them. */
    public int unchangedImagePages() {
        return imagePages - writtenPages;
    }

    public int zeroPages() {
        return zeroPages;
    }

    public int uniquePages() {
        return uniquePages;
    }

    /** Pages that are each guest's own: unique and written after boot. */
    public int privatePages() {
        return uniquePages + writtenPages;
    }

    /** Guest g's pages written after boot, ascending. */
    public int[] writtenAfterBoot(int guest) {
        return written[guest].clone();
    }

    public Kind kindOf(int guest, int page) {
        int slot = slotOf(guest, page);
        if (slot < imagePages) {
            return Arrays.binarySearch(written[guest], page) >= 0 ? Kind.WRITTEN_AFTER_BOOT : Kind.IMAGE;
        }
        return slot < imagePages + zeroPages ? Kind.ZERO : Kind.UNIQUE;
    }

    /** The image block guest g holds unchanged at {@code page}, or -1 for a page written after boot, zeroed or unique. */
    int unchangedImageSlot(int guest, int page) {
        int slot = slotOf(guest, page);
        return slot < imagePages && Arrays.binarySearch(written[guest], page) < 0 ? slot : -1;
    }

    /** The 4096 bytes guest g holds at {@code page} after boot. */
    public void page(int guest, int page, byte[] into) {
        int slot = slotOf(guest, page);
        switch (kindOf(guest, page)) {
            case IMAGE -> imagePage(slot, into);
            case WRITTEN_AFTER_BOOT -> {
                imagePage(slot, into);
                stamp(guest, slot, into);
            }
            case ZERO -> Arrays.fill(into, (byte) 0);
            case UNIQUE -> uniquePage(guest, slot, into);
        }
    }

    /** Writes every page guest g holds after boot into {@code target}: {@link #writeImage}, then {@link #writeOwnPages}. */
    public void load(int guest, Guest target) {
        writeImage(guest, target);
        writeOwnPages(guest, target);
    }

    /** Writes guest g's image pages into {@code target} as the image holds them, as a guest without an index reads them. */
    public void writeImage(int guest, Guest target) {
        writeImage(guest, new GuestTarget(target));
    }

    /** The guest's own writes after its image is in: written-after-boot stamps, zeroed pages, unique pages. */
    public void writeOwnPages(int guest, Guest target) {
        writeOwnPages(guest, new GuestTarget(target));
    }

    /** Writes every page guest g holds after boot into {@code memory}, {@link #guestBytes()} long, touching each. */
    public void fill(int guest, MemorySegment memory) {
        MemoryTarget target = new MemoryTarget(memory);
        writeImage(guest, target);
        writeOwnPages(guest, target);
    }

    @Override
    public void close() {
        if (arena != null) {
            arena.close();
        }
    }

    private void writeImage(int guest, Target target) {
        if (slots == null && imageBytes != null) {
            if (imagePages > 0) {
                target.write(0, imageBytes.asSlice(0, (long) imagePages * PAGE));
            }
            return;
        }
        byte[] bytes = new byte[PAGE];
        for (int p = 0; p < pagesPerGuest; p++) {
            int slot = slotOf(guest, p);
            if (slot < imagePages) {
                imagePage(slot, bytes);
                target.write((long) p * PAGE, bytes, PAGE);
            }
        }
    }

    private void writeOwnPages(int guest, Target target) {
        byte[] bytes = new byte[PAGE];
        for (int p : written[guest]) {
            stamp(guest, slotOf(guest, p), bytes);
            target.write((long) p * PAGE, bytes, STAMP_BYTES);
        }
        byte[] zeros = new byte[PAGE];
        for (int p = 0; p < pagesPerGuest; p++) {
            int slot = slotOf(guest, p);
            if (slot >= imagePages + zeroPages) {
                uniquePage(guest, slot, bytes);
                target.write((long) p * PAGE, bytes, PAGE);
            } else if (slot >= imagePages) {
                target.write((long) p * PAGE, zeros, PAGE);
            }
        }
    }

    private int slotOf(int guest, int page) {
        return slots == null ? page : slots[guest][page];
    }

    private void imagePage(int slot, byte[] into) {
        if (imageBytes != null) {
            MemorySegment.copy(imageBytes, ValueLayout.JAVA_BYTE, (long) slot * PAGE, into, 0, PAGE);
        } else {
            random(mix(IMAGE_STREAM, slot), into, PAGE);
        }
    }

    /** The {@value #STAMP_BYTES} bytes guest g writes at offset 0 of its image page in {@code slot} after boot. */
    private void stamp(int guest, int slot, byte[] into) {
        random(mix(STAMP_STREAM, (long) guest * pagesPerGuest + slot), into, STAMP_BYTES);
    }

    private void uniquePage(int guest, int slot, byte[] into) {
        random(mix(UNIQUE_STREAM, (long) guest * pagesPerGuest + slot), into, PAGE);
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

    /** Guest g's pages written after boot: the image's last slots (demo) or a seeded draw among them. */
    private int[] writtenPagesOf(int guest, boolean sameInEveryGuest) {
        int[] chosen;
        if (sameInEveryGuest) {
            chosen = new int[writtenPages];
            for (int i = 0; i < writtenPages; i++) {
                chosen[i] = imagePages - writtenPages + i;
            }
        } else {
            int[] order = new int[imagePages];
            for (int i = 0; i < imagePages; i++) {
                order[i] = i;
            }
            SplittableRandom random = new SplittableRandom(mix(WRITTEN_STREAM, guest));
            for (int i = 0; i < writtenPages; i++) {
                int j = i + random.nextInt(imagePages - i);
                int t = order[i];
                order[i] = order[j];
                order[j] = t;
            }
            chosen = Arrays.copyOf(order, writtenPages);
        }
        if (slots != null) {
            int[] pageOfSlot = new int[pagesPerGuest];
            for (int p = 0; p < pagesPerGuest; p++) {
                pageOfSlot[slots[guest][p]] = p;
            }
            for (int i = 0; i < chosen.length; i++) {
                chosen[i] = pageOfSlot[chosen[i]];
            }
        }
        Arrays.sort(chosen);
        return chosen;
    }

    private static int[] shuffled(SplittableRandom random, int pages) {
        int[] order = new int[pages];
        for (int i = 0; i < pages; i++) {
            order[i] = i;
        }
        for (int i = pages - 1; i > 0; i--) {
            int j = random.nextInt(i + 1);
            int t = order[i];
            order[i] = order[j];
            order[j] = t;
        }
        return order;
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

    /** Where a mix writes a guest's pages: an engine's guest, or plain memory (the KSM helper's). */
    private interface Target {

        void write(long offset, byte[] bytes, int length);

        void write(long offset, MemorySegment bytes);
    }

    private record GuestTarget(Guest guest) implements Target {

        @Override
        public void write(long offset, byte[] bytes, int length) {
            guest.write(offset, bytes, 0, length);
        }

        @Override
        public void write(long offset, MemorySegment bytes) {
            guest.write(offset, bytes);
        }
    }

    private record MemoryTarget(MemorySegment memory) implements Target {

        @Override
        public void write(long offset, byte[] bytes, int length) {
            MemorySegment.copy(bytes, 0, memory, ValueLayout.JAVA_BYTE, offset, length);
        }

        @Override
        public void write(long offset, MemorySegment bytes) {
            MemorySegment.copy(bytes, 0, memory, offset, bytes.byteSize());
        }
    }
}
