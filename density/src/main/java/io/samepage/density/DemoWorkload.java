package io.samepage.density;

import io.samepage.core.Guest;
import io.samepage.hashing.Pages;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.nio.ByteOrder;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;

/**
 * What {@code samepage demo} does to its guests besides booting them: they hold the demo's page mix
 * ({@link PageMix#demo}: an OS image identical in every guest, zeroed pages, unique pages, image pages
 * written after boot, from a fixed seed, so every run merges the same pages and prints the same
 * counters); after merging, {@link #writeAfterMerge} has the first guest write to some of its shared OS
 * image pages and the second to some of its zero-merged pages; {@link #verify} reads back every page of
 * every guest and compares it with what that guest wrote.
 *
 * <p>Not thread safe: one thread loads, writes and verifies.
 */
final class DemoWorkload {

    /** Pages each of the first two guests writes after merging, at most. */
    static final int WRITES_AFTER_MERGE = 64;

    /** What {@link #writeAfterMerge} stores in the first 8 bytes of a page. */
    private static final long AFTER_MERGE_STAMP = 0xC0FF_EE00_0000_0000L;

    private static final int PAGE = Pages.PAGE_SIZE;
    private static final VarHandle LONGS = MethodHandles.byteArrayViewVarHandle(long[].class, ByteOrder.LITTLE_ENDIAN);

    private final PageMix mix;
    private final int writesAfterMerge;
    /** {@code writtenAfterMerge[g]}: guest g's pages written after merging, ascending; none before. */
    private final int[][] writtenAfterMerge;

    DemoWorkload(PageMix mix) {
        this.mix = mix;
        this.writesAfterMerge = Math.min(WRITES_AFTER_MERGE, Math.min(mix.unchangedImagePages(), mix.zeroPages()) / 2);
        this.writtenAfterMerge = new int[mix.guests()][0];
    }

    PageMix mix() {
        return mix;
    }

    /** Pages written by each of the first two guests after merging. */
    int writesAfterMerge() {
        return writesAfterMerge;
    }

    /**
     * The first guest writes to its first {@link #writesAfterMerge()} OS image pages, the second to its
     * first zeroed pages: each write breaks the sharing of one merged page.
     */
    void writeAfterMerge(List<Guest> guests) {
        byte[] stamp = new byte[Long.BYTES];
        for (int g = 0; g < Math.min(2, mix.guests()); g++) {
            PageMix.Kind kind = g == 0 ? PageMix.Kind.IMAGE : PageMix.Kind.ZERO;
            int[] pages = new int[writesAfterMerge];
            int found = 0;
            for (int p = 0; p < mix.pagesPerGuest() && found < pages.length; p++) {
                if (mix.kindOf(g, p) == kind) {
                    pages[found++] = p;
                }
            }
            stampAfterMerge(g, stamp);
            for (int p : pages) {
                guests.get(g).write((long) p * PAGE, stamp, 0, stamp.length);
            }
            writtenAfterMerge[g] = pages;
        }
    }

    /**
     * Reads every page of every guest and compares it with what that guest wrote.
     *
     * @return pages checked
     * @throws DensityException {@link DensityException.Kind#FAILED} naming the first guest page that
     *                          reads other bytes
     */
    long verify(List<Guest> guests) {
        byte[] expected = new byte[PAGE];
        byte[] actual = new byte[PAGE];
        for (int g = 0; g < mix.guests(); g++) {
            Guest guest = guests.get(g);
            for (int p = 0; p < mix.pagesPerGuest(); p++) {
                expectedContent(g, p, expected);
                guest.read((long) p * PAGE, actual, 0, PAGE);
                if (!Arrays.equals(expected, actual)) {
                    throw DensityException.failed("guest " + guest.name() + " page " + p + " ("
                            + mix.kindOf(g, p).name().toLowerCase(Locale.ROOT) + ") does not read back "
                            + "what the guest wrote: merging or copy-on-write is broken");
                }
            }
        }
        return (long) mix.guests() * mix.pagesPerGuest();
    }

    /** The bytes guest {@code guest} holds at {@code page} now. */
    void expectedContent(int guest, int page, byte[] into) {
        mix.page(guest, page, into);
        if (Arrays.binarySearch(writtenAfterMerge[guest], page) >= 0) {
            stampAfterMerge(guest, into);
        }
    }

    private static void stampAfterMerge(int guest, byte[] into) {
        LONGS.set(into, 0, AFTER_MERGE_STAMP | guest);
    }
}
