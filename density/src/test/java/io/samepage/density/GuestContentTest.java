package io.samepage.density;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.EnumMap;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The density suite's guest content: deterministic per seed, with the documented mix. */
class GuestContentTest {

    private static final int PAGE = TestImages.PAGE;
    /** 1 MiB guests: 256 pages. */
    private static final int GUEST_MIB = 1;

    @TempDir
    Path dir;

    @Test
    void defaultMixIsFortyFiveImageFiveWrittenTwentyFiveZeroTwentyFiveUnique() throws Exception {
        Path image = TestImages.randomFile(dir, 300, 1);
        try (GuestContent content = new GuestContent(image, 3, GUEST_MIB, GuestContent.DEFAULT_UNIQUE_PERCENT, 7)) {
            assertEquals(256, content.pagesPerGuest());
            assertEquals(128, content.imagePages(), "75% - 25% unique = 50% of 256 pages");
            assertEquals(12, content.writtenAfterBootPages(), "5% of 256, rounded down");
            assertEquals(64, content.zeroPages());
            assertEquals(64, content.uniquePages());
            for (int g = 0; g < 3; g++) {
                Map<GuestContent.Kind, Integer> counts = new EnumMap<>(GuestContent.Kind.class);
                for (int p = 0; p < content.pagesPerGuest(); p++) {
                    counts.merge(content.kindOf(g, p), 1, Integer::sum);
                }
                assertEquals(116, counts.get(GuestContent.Kind.IMAGE));
                assertEquals(12, counts.get(GuestContent.Kind.WRITTEN_AFTER_BOOT));
                assertEquals(64, counts.get(GuestContent.Kind.ZERO));
                assertEquals(64, counts.get(GuestContent.Kind.UNIQUE));
            }
        }
    }

    @Test
    void sameSeedGivesTheSameBytesAndAnotherSeedOtherOwnPages() throws Exception {
        Path image = TestImages.randomFile(dir, 300, 1);
        try (GuestContent a = new GuestContent(image, 2, GUEST_MIB, 25, 7);
                GuestContent b = new GuestContent(image, 2, GUEST_MIB, 25, 7);
                GuestContent other = new GuestContent(image, 2, GUEST_MIB, 25, 8)) {
            byte[] x = new byte[PAGE];
            byte[] y = new byte[PAGE];
            int differing = 0;
            for (int g = 0; g < 2; g++) {
                assertArrayEquals(a.writtenAfterBoot(g), b.writtenAfterBoot(g));
                for (int p = 0; p < a.pagesPerGuest(); p++) {
                    a.page(g, p, x);
                    b.page(g, p, y);
                    assertArrayEquals(x, y, "guest " + g + " page " + p);
                    other.page(g, p, y);
                    if (!Arrays.equals(x, y)) {
                        differing++;
                        assertTrue(a.kindOf(g, p) != GuestContent.Kind.ZERO, "zero pages are zero whatever the seed");
                    }
                }
            }
            assertTrue(differing >= 2 * a.uniquePages(), "another seed changes at least every unique page: " + differing);
        }
    }

    @Test
    void imagePagesHoldTheImagesBlocksAndWrittenPagesDifferFromThemAndBetweenGuests() throws Exception {
        Path image = TestImages.randomFile(dir, 300, 2);
        byte[] file = Files.readAllBytes(image);
        try (GuestContent content = new GuestContent(image, 2, GUEST_MIB, 25, 7)) {
            byte[] page = new byte[PAGE];
            byte[] other = new byte[PAGE];
            for (int p = 0; p < content.imagePages(); p++) {
                content.page(0, p, page);
                byte[] block = Arrays.copyOfRange(file, p * PAGE, (p + 1) * PAGE);
                if (content.kindOf(0, p) == GuestContent.Kind.IMAGE) {
                    assertArrayEquals(block, page, "image page " + p);
                } else {
                    assertFalse(Arrays.equals(block, page), "written page " + p + " no longer matches the image");
                    assertArrayEquals(Arrays.copyOfRange(block, GuestContent.STAMP_BYTES, PAGE),
                            Arrays.copyOfRange(page, GuestContent.STAMP_BYTES, PAGE), "only the stamp changed");
                    content.page(1, p, other);
                    assertFalse(Arrays.equals(page, other), "two guests' writes after boot differ");
                }
            }
            content.page(0, content.imagePages(), page);
            assertArrayEquals(new byte[PAGE], page, "the zeroed pages follow the image");
        }
    }

    @Test
    void anImageTooSmallForItsShareLeavesTheRestZeroed() throws Exception {
        Path image = TestImages.randomFile(dir, 10, 3);
        try (GuestContent content = new GuestContent(image, 1, GUEST_MIB, 25, 7)) {
            assertEquals(10, content.imagePages());
            assertEquals(10, content.writtenAfterBootPages(), "at most every image page is written after boot");
            assertEquals(256 - 10 - 64, content.zeroPages());
            assertEquals(64, content.uniquePages());
        }
    }

    @Test
    void uniquePercentMovesPagesBetweenTheImageAndUniqueShares() throws Exception {
        Path image = TestImages.randomFile(dir, 300, 1);
        try (GuestContent none = new GuestContent(image, 1, GUEST_MIB, 0, 7);
                GuestContent most = new GuestContent(image, 1, GUEST_MIB, GuestContent.MAX_UNIQUE_PERCENT, 7)) {
            assertEquals(192, none.imagePages());
            assertEquals(0, none.uniquePages());
            assertEquals(12, most.imagePages(), "5% of 256 is left for the image, all of it written after boot");
            assertEquals(179, most.uniquePages());
            assertEquals(12, most.writtenAfterBootPages());
        }
    }
}
