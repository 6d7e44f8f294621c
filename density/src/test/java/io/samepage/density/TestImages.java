package io.samepage.density;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.SplittableRandom;

/** Small images for the density suite's tests. */
final class TestImages {

    static final int PAGE = 4096;
    static final int DIRECTORY_FILE_BLOCKS = 60;
    static final int DIRECTORY_BLOCKS = 2 * DIRECTORY_FILE_BLOCKS + 2;
    static final int DIRECTORY_DISTINCT_NONZERO_BLOCKS = DIRECTORY_FILE_BLOCKS + 1;

    private TestImages() {
    }

    /** A file of {@code blocks} blocks of random bytes: no zero block, no two blocks alike. */
    static Path randomFile(Path dir, int blocks, long seed) throws IOException {
        byte[] bytes = new byte[blocks * PAGE];
        new SplittableRandom(seed).nextBytes(bytes);
        Path file = dir.resolve("image-" + seed + ".raw");
        Files.write(file, bytes);
        return file;
    }

    /**
     * A directory whose layout has duplicates and a zero block: {@code a.bin} (60 random blocks),
     * {@code b.bin} (the same 60 blocks), {@code c.bin} (one zero block and 10 bytes, so 2 blocks).
     * 122 blocks, 1 zero, 61 distinct non-zero (c.bin's second block holds the 10 bytes).
     */
    static Path directory(Path dir) throws IOException {
        Path root = Files.createDirectories(dir.resolve("tree"));
        byte[] blocks = new byte[DIRECTORY_FILE_BLOCKS * PAGE];
        new SplittableRandom(5).nextBytes(blocks);
        Files.write(root.resolve("a.bin"), blocks);
        Files.write(root.resolve("b.bin"), blocks);
        byte[] c = new byte[PAGE + 10];
        for (int i = PAGE; i < c.length; i++) {
            c[i] = (byte) (i + 1);
        }
        Files.write(root.resolve("c.bin"), c);
        return root;
    }
}
