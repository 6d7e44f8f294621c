package io.samepage.image;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * For each block, the nearest earlier block of the same content, which a multi-threaded load leaves to
 * the loading thread.
 */
class DuplicateBlocksTest {

    private static final int PAGE = 4096;

    @TempDir
    Path dir;

    @Test
    void eachBlockNamesTheNearestEarlierBlockWithItsDigestAndZeroBlocksNone() throws IOException {
        byte[] a = random(1);
        byte[] b = random(2);
        byte[] zero = new byte[PAGE];
        byte[] nearlyA = a.clone();
        nearlyA[PAGE - 1] ^= 1;
        byte[][] blocks = {a, b, a, zero, b, a, zero, nearlyA, a};
        try (ImageIndex index = ImageIndex.build(write(blocks))) {
            assertArrayEquals(new int[] {-1, -1, 0, -1, 1, 2, -1, -1, 5}, DuplicateBlocks.previous(index));
        }
    }

    @Test
    void agreesWithABruteForceSearchOverManyRepeats() throws IOException {
        SplittableRandom random = new SplittableRandom(23);
        byte[][] contents = new byte[40][];
        for (int c = 0; c < contents.length; c++) {
            contents[c] = c == 0 ? new byte[PAGE] : random(100 + c);
        }
        byte[][] blocks = new byte[700][];
        for (int b = 0; b < blocks.length; b++) {
            blocks[b] = contents[random.nextInt(contents.length)];
        }
        int[] expected = new int[blocks.length];
        Arrays.fill(expected, -1);
        for (int b = 0; b < blocks.length; b++) {
            for (int earlier = b - 1; earlier >= 0 && blocks[b] != contents[0]; earlier--) {
                if (Arrays.equals(blocks[earlier], blocks[b])) {
                    expected[b] = earlier;
                    break;
                }
            }
        }
        try (ImageIndex index = ImageIndex.build(write(blocks))) {
            assertArrayEquals(expected, DuplicateBlocks.previous(index));
        }
    }

    private Path write(byte[][] blocks) throws IOException {
        byte[] bytes = new byte[blocks.length * PAGE];
        for (int i = 0; i < blocks.length; i++) {
            System.arraycopy(blocks[i], 0, bytes, i * PAGE, PAGE);
        }
        return Files.write(dir.resolve("disk.img"), bytes);
    }

    private static byte[] random(long seed) {
        byte[] page = new byte[PAGE];
        new SplittableRandom(seed).nextBytes(page);
        return page;
    }
}
