package io.samepage.image;

import io.samepage.hashing.Pages;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.zip.CRC32C;

/**
 * The binary layout of an index file, version 2. All integers are little-endian.
 *
 * <pre>
 * offset  size  header (256 bytes)
 *      0     8  magic "SAMEPIDX"
 *      8     4  version = 2
 *     12     4  block size = 4096
 *     16     4  header length = 256
 *     20     4  source kind: 1 file, 2 directory
 *     24     8  source size: laid-out bytes, a multiple of 4096
 *     32     8  source modification time, nanoseconds since the epoch (newest file)
 *     40     8  block count = source size / 4096
 *     48     8  zero blocks
 *     56     4  fast hash id: 1 CRC32C, 2 NH, 3 XXH64, 4 XXH3, 5 KOMIHASH
 *     60     4  reserved, 0
 *     64     8  fast hash seed
 *     72    32  root digest: SHA-256 over the block digests, in block order
 *    104     8  layout section offset    112  8  its length    120  4  its CRC32C    124  4  reserved
 *    128     8  block section offset     136  8  its length    144  4  its CRC32C    148  4  reserved
 *    152     4  stamp flags: bit 0 = each file's change time and inode number are recorded
 *    156    96  reserved, 0
 *    252     4  CRC32C of bytes [0, 252)
 *
 * layout section (at 256): extent count (4), then per extent: image offset (8), length (8),
 *     change time (ctime), nanoseconds since the epoch (8), inode number (8), path length in bytes (4),
 *     the path in UTF-8. Change time and inode are 0 where the stamp flag is clear.
 * padding: zeros up to the block section.
 * block section (at the first multiple of 4096 after the layout): one 48-byte record per block,
 *     indexed by block number: SHA-256 digest (32), fast hash (8), flags (4: bit 0 = all zeros),
 *     reserved (4).
 * </pre>
 *
 * The block table is a flat array so a lookup by block number is one multiplication; it starts on a
 * page boundary so the mapped file can be read in place. Every section has a CRC32C, and the parser
 * checks each field against the others before trusting any of them: it never reads outside the file.
 *
 * <p>Version 2 added the change stamps ({@link ImageLayout} says why). A version 1 index, which has
 * none, is refused as another version rather than read with the weaker check: it is rebuilt once.
 */
final class IndexFile {

    static final long MAGIC = 0x5844_4950_454D_4153L; // "SAMEPIDX" read as a little-endian long
    static final int VERSION = 2;
    static final int HEADER_LENGTH = 256;
    static final int RECORD_LENGTH = 48;
    static final int DIGEST_LENGTH = 32;
    static final int FLAG_ZERO = 1;
    static final int MAX_PATH_BYTES = 65_536;
    /** Bytes of an extent in the layout section before its path. */
    static final int EXTENT_FIXED = 36;
    /** The stamp flag: each extent holds its file's change time and inode number. */
    static final int STAMPS_RECORDED = 1;

    /** Zeros to compare the padding before the block table with (at most one page of it). */
    static final MemorySegment ZERO_PAD = MemorySegment.ofArray(new byte[Pages.PAGE_SIZE]);
    /** SHA-256 of an all-zero block: the digest every block flagged {@link #FLAG_ZERO} carries. */
    static final MemorySegment ZERO_BLOCK_DIGEST = MemorySegment.ofArray(
            new io.samepage.hashing.ContentDigest().digest(ZERO_PAD, 0));

    static final ValueLayout.OfInt INT = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    static final ValueLayout.OfLong LONG = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    static final long O_MAGIC = 0;
    static final long O_VERSION = 8;
    static final long O_BLOCK_SIZE = 12;
    static final long O_HEADER_LENGTH = 16;
    static final long O_KIND = 20;
    static final long O_SOURCE_SIZE = 24;
    static final long O_MTIME = 32;
    static final long O_BLOCK_COUNT = 40;
    static final long O_ZERO_BLOCKS = 48;
    static final long O_HASH_ID = 56;
    static final long O_HASH_SEED = 64;
    static final long O_ROOT_DIGEST = 72;
    static final long O_LAYOUT = 104;
    static final long O_BLOCKS = 128;
    static final long O_STAMP_FLAGS = 152;
    static final long O_HEADER_CRC = 252;

    private IndexFile() {
    }

    /** Bytes the layout section of {@code layout} takes. */
    static long layoutLength(ImageLayout layout) {
        long length = 4;
        for (ImageLayout.Extent extent : layout.extents()) {
            length += EXTENT_FIXED + extent.path().getBytes(StandardCharsets.UTF_8).length;
        }
        return length;
    }

    /** Where the block section starts for a layout section of {@code layoutLength} bytes. */
    static long blocksOffset(long layoutLength) {
        return (HEADER_LENGTH + layoutLength + Pages.PAGE_SIZE - 1) & -Pages.PAGE_SIZE;
    }

    static void writeLayout(MemorySegment file, ImageLayout layout) {
        long at = HEADER_LENGTH;
        file.set(INT, at, layout.extents().size());
        at += 4;
        for (ImageLayout.Extent extent : layout.extents()) {
            byte[] path = extent.path().getBytes(StandardCharsets.UTF_8);
            file.set(LONG, at, extent.imageOffset());
            file.set(LONG, at + 8, extent.length());
            file.set(LONG, at + 16, extent.ctimeNanos());
            file.set(LONG, at + 24, extent.inode());
            file.set(INT, at + 32, path.length);
            MemorySegment.copy(MemorySegment.ofArray(path), 0, file, at + EXTENT_FIXED, path.length);
            at += EXTENT_FIXED + path.length;
        }
    }

    /**
     * Reads the layout section, checking every extent; the root is the path the caller names. Without
     * {@code stamped}, every change time and inode must be 0.
     */
    static List<ImageLayout.Extent> readLayout(MemorySegment file, long offset, long length, long sourceSize,
            boolean stamped, String where) {
        long end = offset + length;
        if (length < 4) {
            throw corrupt(where, "the layout section is shorter than its count");
        }
        int count = file.get(INT, offset);
        if (count < 1 || count > (length - 4) / EXTENT_FIXED) {
            throw corrupt(where, "the layout section claims " + count + " files");
        }
        List<ImageLayout.Extent> extents = new ArrayList<>(count);
        long at = offset + 4;
        long expectedOffset = 0;
        for (int i = 0; i < count; i++) {
            if (end - at < EXTENT_FIXED) {
                throw corrupt(where, "file " + i + " of the layout runs past its section");
            }
            long imageOffset = file.get(LONG, at);
            long fileLength = file.get(LONG, at + 8);
            long ctime = file.get(LONG, at + 16);
            long inode = file.get(LONG, at + 24);
            int pathLength = file.get(INT, at + 32);
            if (pathLength < 0 || pathLength > MAX_PATH_BYTES || pathLength > end - at - EXTENT_FIXED) {
                throw corrupt(where, "file " + i + " of the layout has a path of " + pathLength + " bytes");
            }
            String path = new String(file.asSlice(at + EXTENT_FIXED, pathLength).toArray(ValueLayout.JAVA_BYTE),
                    StandardCharsets.UTF_8);
            ImageLayout.Extent extent = new ImageLayout.Extent(path, imageOffset, fileLength, ctime, inode);
            if (imageOffset != expectedOffset || fileLength < 0 || fileLength > sourceSize - imageOffset) {
                throw corrupt(where, "file " + i + " of the layout (" + printable(path) + ") lies outside the image");
            }
            if (!stamped && (ctime != 0 || inode != 0)) {
                throw corrupt(where, "file " + i + " of the layout (" + printable(path) + ") has a change stamp "
                        + "though the header says none was recorded");
            }
            expectedOffset += extent.blocks() << Pages.PAGE_SHIFT;
            extents.add(extent);
            at += EXTENT_FIXED + pathLength;
        }
        if (at != end || expectedOffset != sourceSize) {
            throw corrupt(where, "the layout does not add up to the image's " + sourceSize + " bytes");
        }
        return extents;
    }

    /**
     * {@code text}, read from the file, with control characters, line separators and the bidirectional
     * overrides and isolates (U+202A to U+202E, U+2066 to U+2069) written as Java escapes (a backslash,
     * u and four hex digits): a message that names it stays one line, cannot drive the operator's
     * terminal and shows its characters in the order they are in.
     */
    static String printable(String text) {
        StringBuilder out = new StringBuilder(text.length());
        for (int i = 0; i < text.length(); i++) {
            char ch = text.charAt(i);
            if (Character.isISOControl(ch) || ch == '\u2028' || ch == '\u2029' || (ch >= '\u202a' && ch <= '\u202e')
                    || (ch >= '\u2066' && ch <= '\u2069')) {
                out.append(String.format("\\u%04x", (int) ch));
            } else {
                out.append(ch);
            }
        }
        return out.toString();
    }

    static int crc(MemorySegment file, long offset, long length) {
        CRC32C crc = new CRC32C();
        long done = 0;
        while (done < length) {
            int chunk = (int) Math.min(1 << 20, length - done);
            crc.update(file.asSlice(offset + done, chunk).asByteBuffer());
            done += chunk;
        }
        return (int) crc.getValue();
    }

    static ImageIndexException corrupt(String where, String what) {
        return new ImageIndexException(ImageIndexException.Kind.CORRUPT,
                where + ": corrupt index: " + what + "; rebuild it with 'samepage index build'");
    }
}
