package io.samepage.image;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.code_intelligence.jazzer.junit.FuzzTest;
import io.samepage.hashing.Pages;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.util.EnumSet;
import java.util.Set;
import java.util.regex.Pattern;

/**
 * Coverage-guided fuzzing of the index file parser: any bytes either open as an index or are refused
 * with one {@link ImageIndexException} of kind FOREIGN, VERSION or CORRUPT whose message is one line
 * naming the file. Nothing else may escape: no bounds or arithmetic exception, no OutOfMemoryError, no
 * hang (libFuzzer's per-input timeout).
 *
 * <p>Each input is parsed twice, on the heap ({@link ImageIndex#open} maps the file and parses the
 * same way; {@link IndexCorruptionTest} goes through it): as it is, and with its root digest and
 * CRC32Cs recomputed wherever the header's offsets allow. A mutated input almost never keeps its
 * checksums, so without the second try the fuzzer would only ever see the header checksum refuse it;
 * with it, the structural checks behind the checksums are fuzzed too. (Writing and mapping a file per
 * input ran 200 inputs a second instead of 30,000.)
 *
 * <p>The seeds ({@code IndexFileFuzzTestInputs/}) are real index files built by {@link ImageIndex#build}:
 * a one-block file, a two-block file and a directory of three files, one of them empty. In
 * {@code ./mvnw verify} this runs for the bound below (see docs/fuzzing.md).
 */
class IndexFileFuzzTest {

    private static final Set<ImageIndexException.Kind> REFUSALS =
            EnumSet.of(ImageIndexException.Kind.FOREIGN, ImageIndexException.Kind.VERSION, ImageIndexException.Kind.CORRUPT);
    /** A line break or a control character: a message holding one is not one printable line. */
    private static final Pattern NOT_ONE_LINE = Pattern.compile("\\R|\\p{Cntrl}");

    @FuzzTest(maxExecutions = 500_000, maxDuration = "20s")
    void anyBytesOpenAsAnIndexOrAreRefusedWithOneLine(byte[] input) {
        Path name = Path.of("fuzz.idx");
        try {
            assertConsistent(IndexParser.parse(MemorySegment.ofArray(input), name));
        } catch (ImageIndexException e) {
            assertRefusal(e, name.toString());
        }
        try {
            assertConsistent(IndexParser.parse(MemorySegment.ofArray(withChecksumsFixed(input)), name));
        } catch (ImageIndexException e) {
            assertRefusal(e, name.toString());
        }
    }

    private static void assertRefusal(ImageIndexException e, String file) {
        assertTrue(REFUSALS.contains(e.kind()), e.kind() + ": " + e.getMessage());
        assertTrue(e.getMessage().startsWith(file + ": "), e.getMessage());
        assertFalse(NOT_ONE_LINE.matcher(e.getMessage()).find(), "not one printable line: " + e.getMessage());
    }

    /** An accepted layout covers its image with its files, in order, without gaps. */
    private static void assertConsistent(ImageLayout layout) {
        long offset = 0;
        for (ImageLayout.Extent extent : layout.extents()) {
            assertEquals(offset, extent.imageOffset());
            offset += extent.blocks() << Pages.PAGE_SHIFT;
        }
        assertEquals(layout.sizeBytes(), offset);
        assertTrue(layout.extentOfBlock(layout.blockCount() - 1) < layout.extents().size());
    }

    /** A copy of {@code input} with root digest, section CRCs and header CRC recomputed where they fit. */
    static byte[] withChecksumsFixed(byte[] input) {
        byte[] copy = input.clone();
        if (copy.length < IndexFile.HEADER_LENGTH) {
            return copy;
        }
        MemorySegment file = MemorySegment.ofArray(copy);
        long size = copy.length;
        long blockCount = file.get(IndexFile.LONG, IndexFile.O_BLOCK_COUNT);
        long blocksOffset = file.get(IndexFile.LONG, IndexFile.O_BLOCKS);
        long blocksLength = file.get(IndexFile.LONG, IndexFile.O_BLOCKS + 8);
        long layoutOffset = file.get(IndexFile.LONG, IndexFile.O_LAYOUT);
        long layoutLength = file.get(IndexFile.LONG, IndexFile.O_LAYOUT + 8);
        if (fits(blocksOffset, blocksLength, size)) {
            if (blockCount > 0 && blockCount <= blocksLength / IndexFile.RECORD_LENGTH) {
                MemorySegment.copy(MemorySegment.ofArray(ImageIndex.rootDigest(file, blocksOffset, blockCount)), 0,
                        file, IndexFile.O_ROOT_DIGEST, IndexFile.DIGEST_LENGTH);
            }
            file.set(IndexFile.INT, IndexFile.O_BLOCKS + 16, IndexFile.crc(file, blocksOffset, blocksLength));
        }
        if (fits(layoutOffset, layoutLength, size)) {
            file.set(IndexFile.INT, IndexFile.O_LAYOUT + 16, IndexFile.crc(file, layoutOffset, layoutLength));
        }
        file.set(IndexFile.INT, IndexFile.O_HEADER_CRC, IndexFile.crc(file, 0, IndexFile.O_HEADER_CRC));
        return copy;
    }

    private static boolean fits(long offset, long length, long size) {
        return offset >= 0 && length >= 0 && offset <= size && length <= size - offset;
    }
}
