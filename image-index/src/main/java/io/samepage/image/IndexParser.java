package io.samepage.image;

import io.samepage.hashing.Pages;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.util.List;

/**
 * Checks an index file, field by field, before any of it is trusted: magic, version, header
 * checksum, then every offset and length against the file size and each other, then the section
 * checksums, the stamp flags, the layout, the zero-block count and the root digest. The first problem
 * found is the one reported; nothing outside the file is ever read. The layout it returns has no root:
 * the index does not know where its image lies until {@link ImageIndex#checkSource} binds it.
 */
final class IndexParser {

    private IndexParser() {
    }

    static ImageLayout parse(MemorySegment file, Path path) {
        String where = path.toString();
        long size = file.byteSize();
        if (size < 8 || file.get(IndexFile.LONG, IndexFile.O_MAGIC) != IndexFile.MAGIC) {
            throw new ImageIndexException(ImageIndexException.Kind.FOREIGN,
                    where + ": not a Samepage index (no SAMEPIDX magic number at its start)");
        }
        if (size < IndexFile.HEADER_LENGTH) {
            throw IndexFile.corrupt(where, "the file ends inside its header (" + size + " bytes)");
        }
        int version = file.get(IndexFile.INT, IndexFile.O_VERSION);
        if (version != IndexFile.VERSION) {
            throw new ImageIndexException(ImageIndexException.Kind.VERSION, where + ": index format version " + version
                    + ", this build reads version " + IndexFile.VERSION + "; rebuild it with 'samepage index build'");
        }
        if (IndexFile.crc(file, 0, IndexFile.O_HEADER_CRC) != file.get(IndexFile.INT, IndexFile.O_HEADER_CRC)) {
            throw IndexFile.corrupt(where, "the header checksum does not match");
        }
        require(file.get(IndexFile.INT, IndexFile.O_BLOCK_SIZE) == Pages.PAGE_SIZE, where, "the block size is not 4096");
        require(file.get(IndexFile.INT, IndexFile.O_HEADER_LENGTH) == IndexFile.HEADER_LENGTH, where,
                "the header length is not 256");
        ImageLayout.Kind kind = ImageLayout.Kind.ofCode(file.get(IndexFile.INT, IndexFile.O_KIND));
        require(kind != null, where, "the source kind is unknown");
        long sourceSize = file.get(IndexFile.LONG, IndexFile.O_SOURCE_SIZE);
        long blockCount = file.get(IndexFile.LONG, IndexFile.O_BLOCK_COUNT);
        long zeroBlocks = file.get(IndexFile.LONG, IndexFile.O_ZERO_BLOCKS);
        require(blockCount > 0 && sourceSize == blockCount << Pages.PAGE_SHIFT
                && blockCount <= Long.MAX_VALUE / IndexFile.RECORD_LENGTH, where,
                "the source size and block count disagree");
        require(zeroBlocks >= 0 && zeroBlocks <= blockCount, where, "the zero-block count is impossible");
        int hashId = file.get(IndexFile.INT, IndexFile.O_HASH_ID);
        require(hashId >= 1 && hashId <= 5, where, "the fast hash id " + hashId + " is unknown");

        long layoutOffset = file.get(IndexFile.LONG, IndexFile.O_LAYOUT);
        long layoutLength = file.get(IndexFile.LONG, IndexFile.O_LAYOUT + 8);
        long blocksOffset = file.get(IndexFile.LONG, IndexFile.O_BLOCKS);
        long blocksLength = file.get(IndexFile.LONG, IndexFile.O_BLOCKS + 8);
        require(layoutOffset == IndexFile.HEADER_LENGTH && layoutLength >= 4 && layoutLength <= size - layoutOffset,
                where, "the layout section lies outside the file");
        require(blocksOffset == IndexFile.blocksOffset(layoutLength), where, "the block section is misplaced");
        require(blocksLength == blockCount * IndexFile.RECORD_LENGTH, where, "the block section has the wrong length");
        if (blocksOffset > size || blocksLength > size - blocksOffset) {
            throw IndexFile.corrupt(where, "the file is truncated: it has " + size + " bytes, the block table needs "
                    + (blocksOffset + blocksLength));
        }
        require(blocksOffset + blocksLength == size, where, "there are " + (size - blocksOffset - blocksLength)
                + " unexplained bytes after the block table");
        long padding = layoutOffset + layoutLength;
        require(MemorySegment.mismatch(file, padding, blocksOffset, IndexFile.ZERO_PAD, 0, blocksOffset - padding) < 0,
                where, "the padding before the block table is not zero");
        require(IndexFile.crc(file, layoutOffset, layoutLength) == file.get(IndexFile.INT, IndexFile.O_LAYOUT + 16),
                where, "the layout section checksum does not match");
        require(IndexFile.crc(file, blocksOffset, blocksLength) == file.get(IndexFile.INT, IndexFile.O_BLOCKS + 16),
                where, "the block table checksum does not match");

        int stampFlags = file.get(IndexFile.INT, IndexFile.O_STAMP_FLAGS);
        require((stampFlags & ~IndexFile.STAMPS_RECORDED) == 0, where, "the stamp flags " + stampFlags + " are unknown");
        boolean stamped = stampFlags == IndexFile.STAMPS_RECORDED;
        List<ImageLayout.Extent> extents = IndexFile.readLayout(file, layoutOffset, layoutLength, sourceSize, stamped,
                where);
        require(kind == ImageLayout.Kind.DIRECTORY || extents.size() == 1, where, "a file image has more than one file");
        long zeros = 0;
        for (long b = 0; b < blockCount; b++) {
            int flags = file.get(IndexFile.INT, blocksOffset + b * IndexFile.RECORD_LENGTH + 40);
            require((flags & ~IndexFile.FLAG_ZERO) == 0, where, "block " + b + " has unknown flags");
            // A zero block is filled, never read: only its digest can say it is one (a lying flag gave a
            // guest zeros for a data block).
            long record = blocksOffset + b * IndexFile.RECORD_LENGTH;
            require((flags & IndexFile.FLAG_ZERO) == 0 || MemorySegment.mismatch(file, record, record + IndexFile.DIGEST_LENGTH,
                    IndexFile.ZERO_BLOCK_DIGEST, 0, IndexFile.DIGEST_LENGTH) < 0, where,
                    "block " + b + " is flagged zero but its digest is not an all-zero block's");
            zeros += flags & IndexFile.FLAG_ZERO;
        }
        require(zeros == zeroBlocks, where, "the zero-block count does not match the block table");
        byte[] root = ImageIndex.rootDigest(file, blocksOffset, blockCount);
        require(MemorySegment.mismatch(MemorySegment.ofArray(root), 0, IndexFile.DIGEST_LENGTH, file,
                IndexFile.O_ROOT_DIGEST, IndexFile.O_ROOT_DIGEST + IndexFile.DIGEST_LENGTH) < 0, where,
                "the root digest does not match the block digests");
        return new ImageLayout(kind, null, extents, sourceSize, file.get(IndexFile.LONG, IndexFile.O_MTIME), stamped);
    }

    private static void require(boolean condition, String where, String what) {
        if (!condition) {
            throw IndexFile.corrupt(where, what);
        }
    }
}
