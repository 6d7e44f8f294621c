package io.samepage.density;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.samepage.core.DedupEngine;
import io.samepage.core.EngineContext;
import io.samepage.core.Guest;
import io.samepage.core.MergeDomain;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.EnumMap;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The one page mix, in its two presets: deterministic per seed, with the documented shares. */
class PageMixTest {

    private static final int PAGE = TestImages.PAGE;
    /** 1 MiB guests: 256 pages. */
    private static final int GUEST_MIB = 1;

    @TempDir
    Path dir;

    @Test
    void defaultMixIsFortyFiveImageFiveWrittenTwentyFiveZeroTwentyFiveUnique() throws Exception {
        Path image = TestImages.randomFile(dir, 300, 1);
        try (PageMix content = PageMix.density(image, 3, GUEST_MIB, PageMix.DEFAULT_UNIQUE_PERCENT, 7)) {
            assertEquals(256, content.pagesPerGuest());
            assertEquals(128, content.imagePages(), "75% - 25% unique = 50% of 256 pages");
            assertEquals(12, content.writtenAfterBootPages(), "5% of 256, rounded down");
            assertEquals(64, content.zeroPages());
            assertEquals(64, content.uniquePages());
            for (int g = 0; g < 3; g++) {
                Map<PageMix.Kind, Integer> counts = new EnumMap<>(PageMix.Kind.class);
                for (int p = 0; p < content.pagesPerGuest(); p++) {
                    counts.merge(content.kindOf(g, p), 1, Integer::sum);
                }
                assertEquals(116, counts.get(PageMix.Kind.IMAGE));
                assertEquals(12, counts.get(PageMix.Kind.WRITTEN_AFTER_BOOT));
                assertEquals(64, counts.get(PageMix.Kind.ZERO));
                assertEquals(64, counts.get(PageMix.Kind.UNIQUE));
            }
        }
    }

    @Test
    void sameSeedGivesTheSameBytesAndAnotherSeedOtherOwnPages() throws Exception {
        Path image = TestImages.randomFile(dir, 300, 1);
        try (PageMix a = PageMix.density(image, 2, GUEST_MIB, 25, 7);
                PageMix b = PageMix.density(image, 2, GUEST_MIB, 25, 7);
                PageMix other = PageMix.density(image, 2, GUEST_MIB, 25, 8)) {
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
                        assertTrue(a.kindOf(g, p) != PageMix.Kind.ZERO, "zero pages are zero whatever the seed");
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
        try (PageMix content = PageMix.density(image, 2, GUEST_MIB, 25, 7)) {
            byte[] page = new byte[PAGE];
            byte[] other = new byte[PAGE];
            for (int p = 0; p < content.imagePages(); p++) {
                content.page(0, p, page);
                byte[] block = Arrays.copyOfRange(file, p * PAGE, (p + 1) * PAGE);
                if (content.kindOf(0, p) == PageMix.Kind.IMAGE) {
                    assertArrayEquals(block, page, "image page " + p);
                } else {
                    assertFalse(Arrays.equals(block, page), "written page " + p + " no longer matches the image");
                    assertArrayEquals(Arrays.copyOfRange(block, PageMix.STAMP_BYTES, PAGE),
                            Arrays.copyOfRange(page, PageMix.STAMP_BYTES, PAGE), "only the stamp changed");
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
        try (PageMix content = PageMix.density(image, 1, GUEST_MIB, 25, 7)) {
            assertEquals(10, content.imagePages());
            assertEquals(10, content.writtenAfterBootPages(), "at most every image page is written after boot");
            assertEquals(256 - 10 - 64, content.zeroPages());
            assertEquals(64, content.uniquePages());
        }
    }

    @Test
    void uniquePercentMovesPagesBetweenTheImageAndUniqueShares() throws Exception {
        Path image = TestImages.randomFile(dir, 300, 1);
        try (PageMix none = PageMix.density(image, 1, GUEST_MIB, 0, 7);
                PageMix most = PageMix.density(image, 1, GUEST_MIB, PageMix.MAX_UNIQUE_PERCENT, 7)) {
            assertEquals(192, none.imagePages());
            assertEquals(0, none.uniquePages());
            assertEquals(12, most.imagePages(), "5% of 256 is left for the image, all of it written after boot");
            assertEquals(179, most.uniquePages());
            assertEquals(12, most.writtenAfterBootPages());
        }
    }

    @Test
    void demoMixHoldsTheDocumentedSharesInEveryGuest() {
        try (PageMix demo = PageMix.demo(3, 400)) {
            assertEquals(180, demo.unchangedImagePages(), "45% of 400: identical in every guest");
            assertEquals(200, demo.imagePages());
            assertEquals(20, demo.writtenAfterBootPages());
            assertEquals(100, demo.zeroPages());
            assertEquals(100, demo.uniquePages());
            assertEquals(PageMix.DEMO_SEED, demo.seed());
            for (int g = 0; g < 3; g++) {
                Map<PageMix.Kind, Integer> counts = new EnumMap<>(PageMix.Kind.class);
                for (int p = 0; p < 400; p++) {
                    counts.merge(demo.kindOf(g, p), 1, Integer::sum);
                }
                assertEquals(Map.of(PageMix.Kind.IMAGE, 180, PageMix.Kind.ZERO, 100,
                        PageMix.Kind.WRITTEN_AFTER_BOOT, 20, PageMix.Kind.UNIQUE, 100), counts);
            }
        }
    }

    @Test
    void inTheDemoMixOnlyUnchangedImagePagesAreIdenticalAcrossGuestsWhereverEachGuestPlacesThem() {
        int guests = 3;
        try (PageMix demo = PageMix.demo(guests, 400)) {
            Map<ByteBuffer, Set<Integer>> holders = new HashMap<>();
            byte[] page = new byte[PAGE];
            for (int g = 0; g < guests; g++) {
                for (int p = 0; p < 400; p++) {
                    demo.page(g, p, page);
                    if (demo.kindOf(g, p) == PageMix.Kind.ZERO) {
                        assertArrayEquals(new byte[PAGE], page);
                        continue;
                    }
                    Set<Integer> in = holders.computeIfAbsent(ByteBuffer.wrap(page.clone()), k -> new HashSet<>());
                    assertTrue(in.add(g), "guest " + g + " holds a " + demo.kindOf(g, p) + " page twice");
                }
            }
            assertEquals(180, holders.values().stream().filter(s -> s.size() == guests).count());
            assertEquals(guests * 120, holders.values().stream().filter(s -> s.size() == 1).count());
            assertEquals(180 + guests * 120, holders.size());
            int samePlace = 0;
            for (int p = 0; p < 400; p++) {
                samePlace += demo.kindOf(0, p) == demo.kindOf(1, p) ? 1 : 0;
            }
            assertTrue(samePlace < 300, "each guest places its pages in its own order: " + samePlace);
        }
    }

    @Test
    void theDemoMixIsTheSameInEveryRun() {
        byte[] a = new byte[PAGE];
        byte[] b = new byte[PAGE];
        try (PageMix one = PageMix.demo(3, 400); PageMix two = PageMix.demo(3, 400)) {
            for (int p = 0; p < 400; p++) {
                one.page(2, p, a);
                two.page(2, p, b);
                assertArrayEquals(a, b);
            }
        }
    }

    @Test
    void loadIntoAGuestAndFillOfMemoryWriteExactlyTheBytesOfEachPage() throws Exception {
        Path image = TestImages.randomFile(dir, 300, 4);
        try (PageMix density = PageMix.density(image, 2, GUEST_MIB, 25, 7); PageMix demo = PageMix.demo(2, 256);
                DedupEngine engine = DedupEngine.create(new EngineContext().poolBytes(8L << 20).conclude());
                Arena arena = Arena.ofConfined()) {
            MergeDomain domain = engine.createDomain("d");
            for (PageMix mix : List.of(density, demo)) {
                for (int g = 0; g < 2; g++) {
                    Guest guest = engine.createGuest(domain, "vm-" + engine.guests().size(), mix.guestBytes());
                    mix.load(g, guest);
                    MemorySegment memory = arena.allocate(mix.guestBytes());
                    memory.fill((byte) 0x5A);
                    mix.fill(g, memory);
                    byte[] expected = new byte[PAGE];
                    byte[] loaded = new byte[PAGE];
                    for (int p = 0; p < mix.pagesPerGuest(); p++) {
                        mix.page(g, p, expected);
                        guest.read((long) p * PAGE, loaded, 0, PAGE);
                        assertArrayEquals(expected, loaded, mix.kindOf(g, p) + " page " + p + " of guest " + g);
                        assertArrayEquals(expected, memory.asSlice((long) p * PAGE, PAGE).toArray(ValueLayout.JAVA_BYTE),
                                mix.kindOf(g, p) + " page " + p + " of guest " + g + ", filled");
                    }
                }
            }
        }
    }
}
