package io.samepage.cli;

import io.samepage.core.Guest;
import io.samepage.hashing.Pages;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.nio.ByteOrder;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;

/**
 * The guests of {@code samepage demo}: freshly booted virtual machines that run the same operating
 * system, with a page mix generated deterministically from a fixed seed, so every run merges the same
 * pages and prints the same counters.
 *
 * <h2>The page mix of each guest</h2>
 * <ul>
 *   <li><b>{@value #OS_IMAGE_PERCENT}% OS image</b>: pages identical in every guest (kernel text,
 *       shared libraries, cached files of the same image). They merge into one frame per page.</li>
 *   <li><b>{@value #ZEROED_PERCENT}% zeroed</b>: pages the guest has written with zeros (a kernel
 *       that zeroes freed or newly allocated memory). With {@code use_zero_pages} they map the zero
 *       frame. Memory the guest never touched is left out: it costs no frame, merged or not.</li>
 *   <li><b>{@value #UNIQUE_PERCENT}% unique</b>: the guest's own data, in no other guest.</li>
 *   <li><b>{@value #WRITTEN_AFTER_BOOT_PERCENT}% written after boot</b>: pages of the OS image that
 *       each guest has since written to (kernel data, dirtied page cache), so they no longer match.</li>
 * </ul>
 * Each guest places its pages in its own random order: merging finds equal content wherever it sits.
 * Page content is pseudo-random bytes; only equality matters to merging, not what the bytes are.
 *
 * <h2>Why this mix</h2>
 * Published measurements of virtual machines that run the same operating system report that a large
 * share of their memory is identical between them (Waldspurger, "Memory Resource Management in VMware
 * ESX Server", OSDI 2002; Gupta et al., "Difference Engine: Harnessing Memory Redundancy in Virtual
 * Machines", OSDI 2008; Wood et al., "Memory Buddies: Exploiting Page Sharing for Smart Colocation in
 * Virtualized Data Centers", VEE 2009). Guests also hold many zeroed pages: Windows, for one, zeroes
 * free pages in the background. The percentages here are of that order of magnitude, chosen to make a
 * readable demo: they are not measurements, and real guests vary widely with their OS, workload and
 * uptime.
 *
 * <h2>Copy-on-write</h2>
 * After merging, {@link #writeAfterMerge} has the first guest write to some of its shared OS image
 * pages and the second to some of its zero-merged pages; {@link #verify} then reads back every page
 * of every guest and compares it with what that guest wrote.
 *
 * <p>Not thread safe: one thread loads, writes and verifies.
 */
final class DemoWorkload {

    static final long SEED = 0x5A3E_9A6E_2008_0002L;
    static final int OS_IMAGE_PERCENT = 45;
    static final int ZEROED_PERCENT = 25;
    static final int WRITTEN_AFTER_BOOT_PERCENT = 5;
    static final int UNIQUE_PERCENT = 100 - OS_IMAGE_PERCENT - ZEROED_PERCENT - WRITTEN_AFTER_BOOT_PERCENT;

    /** Pages each of the first two guests writes after merging, at most. */
    static final int WRITES_AFTER_MERGE = 64;

    /** What {@link #writeAfterMerge} stores in the first 8 bytes of a page. */
    private static final long AFTER_MERGE_STAMP = 0xC0FF_EE00_0000_0000L;

    private static final int PAGE = Pages.PAGE_SIZE;
    private static final VarHandle LONGS = MethodHandles.byteArrayViewVarHandle(long[].class, ByteOrder.LITTLE_ENDIAN);
    private static final long OS_STREAM = 1;
    private static final long UNIQUE_STREAM = 2;
    private static final long LAYOUT_STREAM = 3;

    /** A page's part of the mix. */
    enum Kind { OS_IMAGE, ZEROED, WRITTEN_AFTER_BOOT, UNIQUE }

    private final int guestCount;
    private final int pagesPerGuest;
    private final int osPages;
    private final int zeroedPages;
    private final int writtenAfterBootPages;
    private final int writesAfterMerge;
    /** {@code slots[g][page]}: the page's place in the mix, a per-guest permutation of the pages. */
    private final int[][] slots;
    private boolean writtenAfterMerge;

    DemoWorkload(int guestCount, int pagesPerGuest) {
        this.guestCount = guestCount;
        this.pagesPerGuest = pagesPerGuest;
        this.osPages = (int) ((long) pagesPerGuest * OS_IMAGE_PERCENT / 100);
        this.zeroedPages = (int) ((long) pagesPerGuest * ZEROED_PERCENT / 100);
        this.writtenAfterBootPages = (int) ((long) pagesPerGuest * WRITTEN_AFTER_BOOT_PERCENT / 100);
        this.writesAfterMerge = Math.min(WRITES_AFTER_MERGE, Math.min(osPages, zeroedPages) / 2);
        this.slots = new int[guestCount][];
        for (int g = 0; g < guestCount; g++) {
            slots[g] = shuffledPages(new SplittableRandom(mix(SEED, LAYOUT_STREAM, g)), pagesPerGuest);
        }
    }

    int guestCount() {
        return guestCount;
    }

    int pagesPerGuest() {
        return pagesPerGuest;
    }

    int osPages() {
        return osPages;
    }

    int zeroedPages() {
        return zeroedPages;
    }

    int writtenAfterBootPages() {
        return writtenAfterBootPages;
    }

    int uniquePages() {
        return pagesPerGuest - osPages - zeroedPages - writtenAfterBootPages;
    }

    /** Pages written by each of the first two guests after merging. */
    int writesAfterMerge() {
        return writesAfterMerge;
    }

    Kind kindOf(int guest, int page) {
        int slot = slots[guest][page];
        if (slot < osPages) {
            return Kind.OS_IMAGE;
        }
        if (slot < osPages + zeroedPages) {
            return Kind.ZEROED;
        }
        return slot < osPages + zeroedPages + writtenAfterBootPages ? Kind.WRITTEN_AFTER_BOOT : Kind.UNIQUE;
    }

    /** Writes guest {@code index}'s pages into {@code guest}: every page, zeroed ones included. */
    void load(int index, Guest guest) {
        byte[] page = new byte[PAGE];
        for (int p = 0; p < pagesPerGuest; p++) {
            bootContent(index, p, page);
            guest.write((long) p * PAGE, page, 0, PAGE);
        }
    }

    /**
     * The first guest writes to its OS image pages 0 to {@link #writesAfterMerge()}-1, the second to
     * its first zeroed pages: each write breaks the sharing of one merged page.
     */
    void writeAfterMerge(List<Guest> guests) {
        byte[] stamp = new byte[Long.BYTES];
        for (int g = 0; g < Math.min(2, guestCount); g++) {
            for (int p = 0; p < pagesPerGuest; p++) {
                if (isWrittenAfterMerge(g, p)) {
                    stampAfterMerge(g, stamp, 0);
                    guests.get(g).write((long) p * PAGE, stamp, 0, stamp.length);
                }
            }
        }
        writtenAfterMerge = true;
    }

    /**
     * Reads every page of every guest and compares it with what that guest wrote.
     *
     * @return pages checked
     * @throws CommandException (exit 1) naming the first guest page that reads other bytes
     */
    long verify(List<Guest> guests) {
        byte[] expected = new byte[PAGE];
        byte[] actual = new byte[PAGE];
        for (int g = 0; g < guestCount; g++) {
            Guest guest = guests.get(g);
            for (int p = 0; p < pagesPerGuest; p++) {
                expectedContent(g, p, expected);
                guest.read((long) p * PAGE, actual, 0, PAGE);
                if (!Arrays.equals(expected, actual)) {
                    throw CommandException.failure("guest " + guest.name() + " page " + p + " ("
                            + kindOf(g, p).name().toLowerCase(java.util.Locale.ROOT) + ") does not read back "
                            + "what the guest wrote: merging or copy-on-write is broken");
                }
            }
        }
        return (long) guestCount * pagesPerGuest;
    }

    /** The bytes guest {@code guest} holds at {@code page} now. */
    void expectedContent(int guest, int page, byte[] into) {
        bootContent(guest, page, into);
        if (writtenAfterMerge && isWrittenAfterMerge(guest, page)) {
            stampAfterMerge(guest, into, 0);
        }
    }

    /** The bytes guest {@code guest} wrote at {@code page} when it booted. */
    void bootContent(int guest, int page, byte[] into) {
        int slot = slots[guest][page];
        switch (kindOf(guest, page)) {
            case OS_IMAGE -> random(mix(SEED, OS_STREAM, slot), into);
            case ZEROED -> Arrays.fill(into, (byte) 0);
            case WRITTEN_AFTER_BOOT -> {
                random(mix(SEED, OS_STREAM, slot), into);
                writeLong(into, 0, mix(SEED, OS_STREAM, -1 - guest));
            }
            case UNIQUE -> random(mix(SEED, UNIQUE_STREAM + 2L * guest, slot), into);
        }
    }

    private boolean isWrittenAfterMerge(int guest, int page) {
        int slot = slots[guest][page];
        return switch (guest) {
            case 0 -> slot < writesAfterMerge;
            case 1 -> slot >= osPages && slot < osPages + writesAfterMerge;
            default -> false;
        };
    }

    private static void stampAfterMerge(int guest, byte[] into, int offset) {
        writeLong(into, offset, AFTER_MERGE_STAMP | guest);
    }

    private static int[] shuffledPages(SplittableRandom random, int pages) {
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

    private static void random(long seed, byte[] into) {
        SplittableRandom random = new SplittableRandom(seed);
        for (int i = 0; i < into.length; i += Long.BYTES) {
            writeLong(into, i, random.nextLong());
        }
    }

    private static void writeLong(byte[] into, int offset, long value) {
        LONGS.set(into, offset, value);
    }

    /** A seed for one (stream, index) pair: SplittableRandom's seeds must not be close to each other. */
    private static long mix(long seed, long stream, long index) {
        long z = seed ^ (stream * 0x9E37_79B9_7F4A_7C15L) ^ (index * 0xC2B2_AE3D_27D4_EB4FL);
        z = (z ^ (z >>> 33)) * 0xFF51_AFD7_ED55_8CCDL;
        z = (z ^ (z >>> 33)) * 0xC4CE_B9FE_1A85_EC53L;
        return z ^ (z >>> 33);
    }
}
