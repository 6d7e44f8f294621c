package io.samepage.image;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import io.samepage.hashing.Pages;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A block flagged zero is filled with zeros and never read, so its flag is believed only with an
 * all-zero block's SHA-256 beside it: an index that flagged a data block zero, its checksums made
 * to match, opened and gave the guest zeros for that block.
 */
class IndexZeroFlagTest {

    @TempDir
    Path temp;

    @Test
    void aDataBlockFlaggedZeroIsRefusedAsCorrupt() throws IOException {
        Path image = Files.write(temp.resolve("disk.img"), ImageIndexTest.randomBytes(2 * Pages.PAGE_SIZE, 3));
        Path file = temp.resolve("disk.idx");
        try (ImageIndex index = ImageIndex.build(image)) {
            index.writeTo(file);
        }
        try (FileChannel channel = FileChannel.open(file, StandardOpenOption.READ, StandardOpenOption.WRITE);
                Arena arena = Arena.ofConfined()) {
            MemorySegment bytes = channel.map(FileChannel.MapMode.READ_WRITE, 0, channel.size(), arena);
            long blocks = bytes.get(IndexFile.LONG, IndexFile.O_BLOCKS);
            long blocksLength = bytes.get(IndexFile.LONG, IndexFile.O_BLOCKS + 8);
            bytes.set(IndexFile.INT, blocks + IndexFile.RECORD_LENGTH + 40, IndexFile.FLAG_ZERO);     // block 1
            bytes.set(IndexFile.LONG, IndexFile.O_ZERO_BLOCKS, 1L);
            bytes.set(IndexFile.INT, IndexFile.O_BLOCKS + 16, IndexFile.crc(bytes, blocks, blocksLength));
            bytes.set(IndexFile.INT, IndexFile.O_HEADER_CRC, IndexFile.crc(bytes, 0, IndexFile.O_HEADER_CRC));
            bytes.force();
        }
        ImageIndexException refused = assertThrows(ImageIndexException.class, () -> ImageIndex.open(file, image).close());
        assertEquals(ImageIndexException.Kind.CORRUPT, refused.kind());
        assertEquals(file + ": corrupt index: block 1 is flagged zero but its digest is not an all-zero block's; "
                + "rebuild it with 'samepage index build'",
                refused.getMessage());
    }

    @Test
    void aRealZeroBlockStillOpensAsZero() throws IOException {
        byte[] bytes = new byte[2 * Pages.PAGE_SIZE];
        System.arraycopy(ImageIndexTest.randomBytes(Pages.PAGE_SIZE, 4), 0, bytes, 0, Pages.PAGE_SIZE);
        Path image = Files.write(temp.resolve("half.img"), bytes);
        Path file = temp.resolve("half.idx");
        try (ImageIndex index = ImageIndex.build(image)) {
            index.writeTo(file);
        }
        try (ImageIndex opened = ImageIndex.open(file, image)) {
            assertEquals(false, opened.isZero(0));
            assertEquals(true, opened.isZero(1));
        }
    }
}
