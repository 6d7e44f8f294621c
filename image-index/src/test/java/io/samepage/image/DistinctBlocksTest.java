package io.samepage.image;

import static org.junit.jupiter.api.Assertions.assertEquals;

import io.samepage.image.ImageIndex;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Counting an image's distinct non-zero blocks from its index. */
class DistinctBlocksTest {

    private static final int PAGE = 4096;

    @TempDir
    Path dir;

    @Test
    void duplicatesCountOnceAndZeroBlocksNotAtAll() throws IOException {
        int distinct = 300;
        byte[] bytes = new byte[(2 * distinct + 50) * PAGE];
        SplittableRandom random = new SplittableRandom(17);
        for (int i = 0; i < distinct * PAGE; i++) {
            bytes[i] = (byte) random.nextInt();
        }
        for (int b = 0; b < distinct; b++) {
            int from = random.nextInt(distinct);
            System.arraycopy(bytes, from * PAGE, bytes, (distinct + b) * PAGE, PAGE);
        }
        Path image = Files.write(dir.resolve("disk.img"), bytes);
        try (ImageIndex index = ImageIndex.build(image)) {
            assertEquals(50, index.zeroBlocks());
            assertEquals(distinct, DistinctBlocks.count(index));
        }
    }

    @Test
    void anImageOfOnlyZerosHasNone() throws IOException {
        Path image = Files.write(dir.resolve("zeros.img"), new byte[8 * PAGE]);
        try (ImageIndex index = ImageIndex.build(image)) {
            assertEquals(0, DistinctBlocks.count(index));
        }
    }
}
