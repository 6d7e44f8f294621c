package io.samepage.image;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.samepage.hashing.ContentDigest;
import io.samepage.hashing.Pages;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Building, writing, opening and checking an index, from files and directory trees. */
class ImageIndexTest {

    private static final int PAGE = Pages.PAGE_SIZE;

    @TempDir
    Path temp;

    static byte[] randomBytes(int length, long seed) {
        byte[] bytes = new byte[length];
        new SplittableRandom(seed).nextBytes(bytes);
        return bytes;
    }

    @Test
    void aFileIndexHoldsEachBlocksDigestAndZeroFlag() throws IOException {
        byte[] content = new byte[5 * PAGE + 100];
        System.arraycopy(randomBytes(PAGE, 1), 0, content, 0, PAGE);
        System.arraycopy(randomBytes(PAGE, 2), 0, content, 2 * PAGE, PAGE);
        System.arraycopy(randomBytes(PAGE, 1), 0, content, 3 * PAGE, PAGE);
        content[5 * PAGE + 99] = 7;
        Path image = Files.write(temp.resolve("disk.img"), content);
        try (ImageIndex index = ImageIndex.build(image)) {
            assertEquals(6, index.blockCount());
            assertEquals(2, index.zeroBlocks(), "blocks 1 and 4");
            assertTrue(index.isZero(1));
            assertTrue(index.isZero(4));
            assertFalse(index.isZero(5), "the padded tail holds a 7");
            byte[] expected = new byte[PAGE];
            expected[99] = 7;
            assertArrayEquals(new ContentDigest().digest(MemorySegment.ofArray(expected), 0), digest(index, 5));
            assertArrayEquals(digest(index, 0), digest(index, 3), "equal blocks, equal digests");
            assertEquals(index.fastHash(0), index.fastHash(3));
            assertFalse(java.util.Arrays.equals(digest(index, 0), digest(index, 2)));
        }
    }

    @Test
    void aWrittenIndexReopensWithTheSameContent() throws IOException {
        Path image = Files.write(temp.resolve("disk.img"), randomBytes(40 * PAGE, 3));
        Path file = temp.resolve("disk.idx");
        try (ImageIndex built = ImageIndex.build(image)) {
            built.writeTo(file);
            try (ImageIndex opened = ImageIndex.open(file, image)) {
                assertEquals(built.blockCount(), opened.blockCount());
                assertEquals(built.rootDigestHex(), opened.rootDigestHex());
                for (long b = 0; b < built.blockCount(); b++) {
                    assertArrayEquals(digest(built, b), digest(opened, b));
                    assertEquals(built.fastHash(b), opened.fastHash(b));
                }
                assertEquals(image, opened.layout().root());
            }
        }
        try (var files = Files.list(temp)) {
            assertEquals(2, files.count(), "no temporary file is left behind");
        }
    }

    @Test
    void aDirectoryIsLaidOutPageAlignedInUnsignedUtf8PathOrder() throws IOException {
        Path root = Files.createDirectories(temp.resolve("tree"));
        Files.createDirectories(root.resolve("lib/sub"));
        Files.write(root.resolve("b.txt"), randomBytes(10, 4));
        Files.write(root.resolve("lib/sub/z.bin"), randomBytes(PAGE + 1, 5));
        Files.write(root.resolve("a.txt"), new byte[0]);
        Files.write(root.resolve("é.txt"), randomBytes(3, 6));
        Files.write(root.resolve("lib/a.bin"), randomBytes(2 * PAGE, 7));
        Files.createSymbolicLink(root.resolve("link"), root.resolve("b.txt"));
        ImageLayout layout = ImageLayout.of(root);
        List<String> order = new ArrayList<>();
        layout.extents().forEach(e -> order.add(e.path() + "@" + e.imageOffset()));
        assertEquals(List.of("a.txt@0", "b.txt@0", "lib/a.bin@4096", "lib/sub/z.bin@12288", "é.txt@20480"), order);
        assertEquals(6L * PAGE, layout.sizeBytes());
        try (ImageIndex index = ImageIndex.build(root)) {
            assertEquals(6, index.blockCount());
            assertEquals(ImageLayout.Kind.DIRECTORY, index.layout().kind());
        }
    }

    @Test
    void anIndexOfAChangedImageIsRefusedAsStale() throws IOException {
        Path image = Files.write(temp.resolve("disk.img"), randomBytes(8 * PAGE, 8));
        Path file = temp.resolve("disk.idx");
        try (ImageIndex built = ImageIndex.build(image)) {
            built.writeTo(file);
        }
        Files.setLastModifiedTime(image, FileTime.fromMillis(Files.getLastModifiedTime(image).toMillis() + 5000));
        ImageIndexException stale = assertThrows(ImageIndexException.class, () -> ImageIndex.open(file, image));
        assertEquals(ImageIndexException.Kind.STALE, stale.kind());
        assertTrue(stale.getMessage().contains("modified") && stale.getMessage().contains("--rebuild"), stale.getMessage());
        Files.write(image, randomBytes(9 * PAGE, 8));
        ImageIndexException resized = assertThrows(ImageIndexException.class, () -> ImageIndex.open(file, image));
        assertTrue(resized.getMessage().contains("size"), resized.getMessage());
    }

    @Test
    void badSourcesAreRefusedByName() throws IOException {
        Path empty = Files.write(temp.resolve("empty.img"), new byte[0]);
        assertEquals(ImageIndexException.Kind.BAD_SOURCE,
                assertThrows(ImageIndexException.class, () -> ImageIndex.build(empty)).kind());
        Path missing = temp.resolve("missing.img");
        ImageIndexException e = assertThrows(ImageIndexException.class, () -> ImageIndex.build(missing));
        assertTrue(e.getMessage().startsWith(missing.toString()), e.getMessage());
        Path emptyDir = Files.createDirectories(temp.resolve("nothing"));
        assertEquals(ImageIndexException.Kind.BAD_SOURCE,
                assertThrows(ImageIndexException.class, () -> ImageIndex.build(emptyDir)).kind());
    }

    @Test
    void progressIsReportedUpToTheTotal() throws IOException {
        Path image = Files.write(temp.resolve("disk.img"), randomBytes(600 * PAGE, 9));
        long[] last = {-1, -1};
        try (ImageIndex ignored = ImageIndex.build(image, (done, total) -> {
            assertTrue(done >= last[0], "progress never goes back");
            last[0] = done;
            last[1] = total;
        })) {
            assertEquals(600, last[0]);
            assertEquals(600, last[1]);
        }
    }

    static byte[] digest(ImageIndex index, long block) {
        byte[] out = new byte[ContentDigest.LENGTH];
        index.digest(block, out, 0);
        return out;
    }
}
