package io.samepage.image;

import io.samepage.hashing.HashAlgorithm;
import io.samepage.hashing.Pages;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.BasicFileAttributes;
import java.nio.file.attribute.PosixFilePermission;
import java.util.HexFormat;
import java.util.List;
import java.util.Set;

/**
 * The pre-load index of one image: for each 4 KiB block its SHA-256 digest, its fast hash and
 * whether it is all zeros, bound to the image's identity (laid-out size, newest modification time,
 * file list, each file's change time and inode number, and a root digest over all block digests). See
 * {@link IndexFile} for the file format and {@link ImageLayout} for how files and directories are laid
 * out in blocks, and what the identity rests on.
 *
 * <p>An index is built from a source ({@link #build}), written atomically ({@link #writeTo}), and
 * opened memory-mapped ({@link #open}); a built and an opened index hold the same bytes and answer
 * the same way. Opening checks everything before trusting anything: a foreign, wrong-version,
 * truncated or corrupt file gives one {@link ImageIndexException} naming the file.
 *
 * <p>Thread safety: immutable once built or opened; safe for concurrent readers until closed.
 */
public final class ImageIndex implements AutoCloseable {

    /** The fast hash stored per block: the engine's default algorithm, unkeyed. */
    static final HashAlgorithm FAST_HASH = HashAlgorithm.defaultAlgorithm();
    private static final List<HashAlgorithm> HASH_IDS = List.of(HashAlgorithm.CRC32C, HashAlgorithm.NH,
            HashAlgorithm.XXH64, HashAlgorithm.XXH3, HashAlgorithm.KOMIHASH);

    private final Arena arena;
    private final MemorySegment bytes;
    private final String where;
    /** The file the bytes are mapped from; null for an index built in memory. */
    private final Path file;
    /**
     * The identity (device and inode) of that file when it was opened, so that its size is judged only
     * while its path still names it; null for an index built in memory, or if the path was given another
     * file while the index was being opened.
     */
    private final Object fileKey;
    /** Bound to the source's path by {@link #checkSource}; an index opened alone has a null root. */
    private volatile ImageLayout layout;
    private final long blockCount;
    private final long zeroBlocks;
    private final long blocksOffset;
    /** {@link DuplicateBlocks#previous}, made at the first load that needs it; guarded by this. */
    private int[] previousBlocks;
    private boolean previousBlocksKnown;

    private ImageIndex(Arena arena, MemorySegment bytes, String where, Path file, Object fileKey, ImageLayout layout) {
        this.arena = arena;
        this.bytes = bytes;
        this.where = where;
        this.file = file;
        this.fileKey = fileKey;
        this.layout = layout;
        this.blockCount = bytes.get(IndexFile.LONG, IndexFile.O_BLOCK_COUNT);
        this.zeroBlocks = bytes.get(IndexFile.LONG, IndexFile.O_ZERO_BLOCKS);
        this.blocksOffset = bytes.get(IndexFile.LONG, IndexFile.O_BLOCKS);
    }

    /** Builds the index of {@code source} (a file or a directory), hashing on every core. */
    public static ImageIndex build(Path source) {
        return build(source, BuildProgress.NONE);
    }

    /**
     * Builds the index of {@code source}, hashing blocks on every available core and reporting
     * progress to {@code progress} on the calling thread. The image's identity (with each file's change
     * stamp) is taken before any block is read and again after the last: an image that changed in
     * between would give an index of old and new blocks under one identity, and is refused. An image
     * changed just before is waited for until a further change must move its change time
     * ({@link ImageLayout#settled}: at most {@link ImageLayout#SETTLE_NANOS} where change times have
     * sub-second precision).
     *
     * @throws ImageIndexException BAD_SOURCE or IO naming the source; BLOCK_MISMATCH if it changed while
     *                             its blocks were read (no index is made, so none can be written)
     */
    public static ImageIndex build(Path source, BuildProgress progress) {
        return build(source, progress, false);
    }

    /** {@link #build}; {@code verifying}: for {@link #verify}, whose refusal of a changed image says so. */
    private static ImageIndex build(Path source, BuildProgress progress, boolean verifying) {
        ImageLayout layout = ImageLayout.settled(source);
        long layoutLength = IndexFile.layoutLength(layout);
        long blocksOffset = IndexFile.blocksOffset(layoutLength);
        long blocksLength = layout.blockCount() * IndexFile.RECORD_LENGTH;
        Arena arena = Arena.ofShared();
        try {
            MemorySegment file = arena.allocate(blocksOffset + blocksLength, Pages.PAGE_SIZE);
            IndexFile.writeLayout(file, layout);
            long zeroBlocks = IndexBuilder.hashBlocks(layout, file, blocksOffset, progress);
            String changed = layout.differenceFrom(ImageLayout.of(source));
            if (changed != null) {
                throw new ImageIndexException(ImageIndexException.Kind.BLOCK_MISMATCH, source + " changed while "
                        + (verifying ? "it was read to verify the index: " + changed + "; nothing was verified: verify"
                        : "its index was being built: " + changed + "; no index was made: build it")
                        + " again once nothing writes to the image");
            }
            file.set(IndexFile.LONG, IndexFile.O_MAGIC, IndexFile.MAGIC);
            file.set(IndexFile.INT, IndexFile.O_VERSION, IndexFile.VERSION);
            file.set(IndexFile.INT, IndexFile.O_BLOCK_SIZE, Pages.PAGE_SIZE);
            file.set(IndexFile.INT, IndexFile.O_HEADER_LENGTH, IndexFile.HEADER_LENGTH);
            file.set(IndexFile.INT, IndexFile.O_KIND, layout.kind().code);
            file.set(IndexFile.LONG, IndexFile.O_SOURCE_SIZE, layout.sizeBytes());
            file.set(IndexFile.LONG, IndexFile.O_MTIME, layout.mtimeNanos());
            file.set(IndexFile.LONG, IndexFile.O_BLOCK_COUNT, layout.blockCount());
            file.set(IndexFile.LONG, IndexFile.O_ZERO_BLOCKS, zeroBlocks);
            file.set(IndexFile.INT, IndexFile.O_HASH_ID, HASH_IDS.indexOf(FAST_HASH) + 1);
            file.set(IndexFile.LONG, IndexFile.O_HASH_SEED, 0L);
            file.set(IndexFile.INT, IndexFile.O_STAMP_FLAGS, layout.changeStamps() ? IndexFile.STAMPS_RECORDED : 0);
            MemorySegment.copy(MemorySegment.ofArray(rootDigest(file, blocksOffset, layout.blockCount())), 0, file,
                    IndexFile.O_ROOT_DIGEST, IndexFile.DIGEST_LENGTH);
            file.set(IndexFile.LONG, IndexFile.O_LAYOUT, IndexFile.HEADER_LENGTH);
            file.set(IndexFile.LONG, IndexFile.O_LAYOUT + 8, layoutLength);
            file.set(IndexFile.INT, IndexFile.O_LAYOUT + 16, IndexFile.crc(file, IndexFile.HEADER_LENGTH, layoutLength));
            file.set(IndexFile.LONG, IndexFile.O_BLOCKS, blocksOffset);
            file.set(IndexFile.LONG, IndexFile.O_BLOCKS + 8, blocksLength);
            file.set(IndexFile.INT, IndexFile.O_BLOCKS + 16, IndexFile.crc(file, blocksOffset, blocksLength));
            file.set(IndexFile.INT, IndexFile.O_HEADER_CRC, IndexFile.crc(file, 0, IndexFile.O_HEADER_CRC));
            return new ImageIndex(arena, file, "index of " + source, null, null, layout);
        } catch (RuntimeException | Error e) {
            arena.close();
            throw e;
        }
    }

    /**
     * Opens an index file memory-mapped and checks its structure, checksums and root digest (not the
     * image: see {@link #open(Path, Path)}). A directory or a file that is not a regular file is
     * refused first ({@link #checkReadable}).
     *
     * @throws ImageIndexException FOREIGN, VERSION, CORRUPT or IO, naming the file
     */
    public static ImageIndex open(Path indexFile) {
        checkReadable(indexFile);
        Arena arena = Arena.ofShared();
        try {
            // The file's identity before the open and after it: if they differ, the path was given another
            // file meanwhile, and which one was mapped is not known.
            Object before = identityOf(indexFile);
            try (FileChannel channel = FileChannel.open(indexFile, StandardOpenOption.READ)) {
                long size = channel.size();
                MemorySegment file = size == 0 ? arena.allocate(0)
                        : channel.map(FileChannel.MapMode.READ_ONLY, 0, size, arena);
                ImageLayout layout = IndexParser.parse(file, indexFile);
                Object key = before != null && before.equals(identityOf(indexFile)) ? before : null;
                return new ImageIndex(arena, file, indexFile.toString(), indexFile, key, layout);
            }
        } catch (NoSuchFileException e) {
            arena.close();
            throw new ImageIndexException(ImageIndexException.Kind.IO, indexFile + ": no such index file", e);
        } catch (IOException e) {
            arena.close();
            throw new ImageIndexException(ImageIndexException.Kind.IO, indexFile + ": cannot read: " + e.getMessage(), e);
        } catch (RuntimeException | Error e) {
            arena.close();
            throw e;
        }
    }

    /**
     * Opens an index and checks that {@code source} is still the image it describes ({@link #checkSource}).
     *
     * @throws ImageIndexException STALE if the image's size, modification time, files, or a file's change
     *                             time or inode number changed
     */
    public static ImageIndex open(Path indexFile, Path source) {
        ImageIndex index = open(indexFile);
        try {
            index.checkSource(source);
            return index;
        } catch (RuntimeException | Error e) {     // an OutOfMemoryError too: else the file stays mapped
            index.close();
            throw e;
        }
    }

    /**
     * Refuses a source that is no longer the image this index describes ({@link ImageLayout#differenceFrom}:
     * kind, size, modification time, files, and each file's change time and inode number); otherwise
     * binds the index to it, so {@link #layout()} reads blocks from there. A change after this check is
     * not seen by it: a block the loader reads is still checked against its digest, a block it maps as
     * resident is not.
     *
     * @throws ImageIndexException STALE naming what changed
     */
    public void checkSource(Path source) {
        ImageLayout current = ImageLayout.of(source);
        String difference = layout.differenceFrom(current);
        if (difference != null) {
            throw new ImageIndexException(ImageIndexException.Kind.STALE, where + " does not describe " + source
                    + " any more: " + difference + "; rebuild the index (--rebuild)");
        }
        layout = layout.withRoot(source);
    }

    /**
     * Re-reads {@code source} and compares it with this index: its identity, and every block's digest
     * where the two have the same number of blocks.
     */
    public Verification verify(Path source, BuildProgress progress) {
        String difference = layout.differenceFrom(ImageLayout.of(source));
        try (ImageIndex fresh = build(source, progress, true)) {
            if (fresh.blockCount() != blockCount) {
                return new Verification(difference, 0, Math.max(blockCount, fresh.blockCount()), -1);
            }
            long mismatched = 0;
            long first = -1;
            for (long b = 0; b < blockCount; b++) {
                long mine = record(b);
                long theirs = fresh.record(b);
                if (MemorySegment.mismatch(bytes, mine, mine + IndexFile.DIGEST_LENGTH, fresh.bytes, theirs,
                        theirs + IndexFile.DIGEST_LENGTH) >= 0) {
                    mismatched++;
                    first = first < 0 ? b : first;
                }
            }
            return new Verification(difference, blockCount, mismatched, first);
        }
    }

    /**
     * Refuses, before it is opened, an index file to read that is a directory or not a regular file (a
     * FIFO would block the open until a writer came). A missing file passes: opening it says so.
     * {@link #open} checks this first; a caller checks it earlier to refuse before any other work.
     *
     * @throws ImageIndexException IO naming the file and what it is
     */
    public static void checkReadable(Path indexFile) {
        if (Files.isDirectory(indexFile)) {
            throw unusable(indexFile + ": is a directory, not an index file");
        }
        if (Files.exists(indexFile) && !Files.isRegularFile(indexFile)) {
            throw unusable(indexFile + ": not a regular file");
        }
    }

    /**
     * Refuses, before any work, an index file that {@link #writeTo} could not write or that would change
     * the image {@code source} it describes: a directory, something that is not a regular file (a
     * device), a folder that does not exist or cannot be written, the image itself, or a path inside the
     * image's directory tree. A source that is missing or unreadable passes: building it says so.
     *
     * @throws ImageIndexException IO naming the file and what is wrong
     */
    public static void checkWritable(Path file, Path source) {
        if (Files.isDirectory(file)) {
            throw unusable(file + ": is a directory; name the index file to write");
        }
        if (Files.exists(file) && !Files.isRegularFile(file)) {
            throw unusable(file + ": exists and is not a regular file; it would be replaced");
        }
        Path folder = file.toAbsolutePath().getParent();
        if (!Files.isDirectory(folder)) {
            throw unusable(file + ": the directory " + folder + " does not exist");
        }
        if (!Files.isWritable(folder)) {
            throw unusable(file + ": cannot write in " + folder + ": permission denied");
        }
        try {
            Path image = source.toRealPath();
            if (Files.isDirectory(image) && folder.toRealPath().startsWith(image)) {
                throw unusable(file + ": lies inside the image " + source
                        + "; writing it there would change the image it describes");
            }
            if (Files.exists(file) && Files.isSameFile(file, image)) {
                throw unusable(file + ": is the image " + source + " itself");
            }
        } catch (IOException e) {
            // The source is missing or unreadable: building it says so, naming it.
        }
    }

    private static ImageIndexException unusable(String message) {
        return new ImageIndexException(ImageIndexException.Kind.IO, message);
    }

    /**
     * Writes the index to {@code file} atomically: a temporary file beside it, flushed, given its mode,
     * then renamed over it, so the file never appears half written or with another mode. The mode is the
     * replaced file's, or for a new file 0666 less this process's umask ({@link FileModes}).
     *
     * @throws ImageIndexException WRITE if it cannot be written or its mode cannot be set
     */
    public void writeTo(Path file) {
        Set<PosixFilePermission> mode = FileModes.forWriting(file);
        Path directory = file.toAbsolutePath().getParent();
        Path temporary = null;
        try {
            temporary = Files.createTempFile(directory, "." + file.getFileName(), ".tmp");
            try (FileChannel channel = FileChannel.open(temporary, StandardOpenOption.WRITE)) {
                var buffer = bytes.asByteBuffer();
                while (buffer.hasRemaining()) {
                    channel.write(buffer);
                }
                channel.force(true);
            }
            Files.setPosixFilePermissions(temporary, mode);
            Files.move(temporary, file, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
            temporary = null;
        } catch (IOException e) {
            // The reason alone: the error names the temporary file, not the one being written.
            throw new ImageIndexException(ImageIndexException.Kind.WRITE, file + ": cannot write the index: "
                    + IoReason.of(e), e);
        } finally {
            if (temporary != null) {
                try {
                    Files.deleteIfExists(temporary);
                } catch (IOException ignored) {
                    // the temporary file is all that is left behind; the target was never touched
                }
            }
        }
    }

    /** The image's layout; its root is null until the index is bound to a source. */
    public ImageLayout layout() {
        return layout;
    }

    public long blockCount() {
        return blockCount;
    }

    /** The index file format version ({@value IndexFile#VERSION} for everything this build writes). */
    public int formatVersion() {
        return bytes.get(IndexFile.INT, IndexFile.O_VERSION);
    }

    public long zeroBlocks() {
        return zeroBlocks;
    }

    public long sourceSizeBytes() {
        return layout.sizeBytes();
    }

    /** Bytes of the index itself. */
    public long sizeBytes() {
        return bytes.byteSize();
    }

    public byte[] rootDigest() {
        return bytes.asSlice(IndexFile.O_ROOT_DIGEST, IndexFile.DIGEST_LENGTH).toArray(ValueLayout.JAVA_BYTE);
    }

    public String rootDigestHex() {
        return HexFormat.of().formatHex(rootDigest());
    }

    /** The fast hash algorithm of {@link #fastHash}, unkeyed (seed {@link #fastHashSeed()}). */
    public HashAlgorithm fastHashAlgorithm() {
        return HASH_IDS.get(bytes.get(IndexFile.INT, IndexFile.O_HASH_ID) - 1);
    }

    public long fastHashSeed() {
        return bytes.get(IndexFile.LONG, IndexFile.O_HASH_SEED);
    }

    public boolean isZero(long block) {
        return (bytes.get(IndexFile.INT, record(block) + 40) & IndexFile.FLAG_ZERO) != 0;
    }

    public long fastHash(long block) {
        return bytes.get(IndexFile.LONG, record(block) + 32);
    }

    /** Copies block {@code block}'s SHA-256 digest into {@code out[offset..offset+32)}. */
    public void digest(long block, byte[] out, int offset) {
        MemorySegment.copy(bytes, ValueLayout.JAVA_BYTE, record(block), out, offset, IndexFile.DIGEST_LENGTH);
    }

    /** True if {@code digest[offset..offset+32)} is block {@code block}'s digest. Allocates nothing. */
    public boolean digestEquals(long block, byte[] digest, int offset) {
        long at = record(block);
        for (int i = 0; i < IndexFile.DIGEST_LENGTH; i++) {
            if (bytes.get(ValueLayout.JAVA_BYTE, at + i) != digest[offset + i]) {
                return false;
            }
        }
        return true;
    }

    private long record(long block) {
        java.util.Objects.checkIndex(block, blockCount);
        return blocksOffset + block * IndexFile.RECORD_LENGTH;
    }

    /**
     * For each block the nearest earlier block with the same digest ({@link DuplicateBlocks#previous}),
     * or null for an index too large to table; computed once, by the first caller. Thread safe.
     */
    synchronized int[] previousBlocks() {
        if (!previousBlocksKnown) {
            previousBlocks = DuplicateBlocks.previous(this);
            previousBlocksKnown = true;
        }
        return previousBlocks;
    }

    /**
     * The error for {@code fault}, the JVM's error for a fault in a memory access ("a fault occurred in an
     * unsafe memory access operation") met while reading this index, if the index's file is now shorter
     * than the bytes mapped from it ({@link #cutShort}): it was cut short while in use, and the fault was
     * reading past its end. Otherwise (an index built in memory, a file that did not shrink) the fault is
     * not known to be the index's, and is rethrown as it is.
     */
    ImageIndexException cutShortWhileInUse(InternalError fault) {
        ImageIndexException cut = cutShort(fault);
        if (cut == null) {
            throw fault;
        }
        return cut;
    }

    /**
     * The error for this index's file being shorter now than the bytes mapped from it (it was cut short
     * while in use: a read of the mapped bytes past its new end faults), with {@code cause} (may be null);
     * null if that is not known: an index built in memory, a file no shorter, a path that no longer names
     * the file opened (deleted, or another file renamed over it, which leaves the mapped one as it was),
     * or a path that cannot be looked at, whose reason is then added to {@code cause}. One stat of the path.
     */
    ImageIndexException cutShort(Throwable cause) {
        if (fileKey == null) {
            return null;
        }
        BasicFileAttributes now;
        try {
            now = Files.readAttributes(file, BasicFileAttributes.class);
        } catch (IOException e) {
            if (cause != null) {
                cause.addSuppressed(e);
            }
            return null;
        }
        if (!fileKey.equals(now.fileKey()) || now.size() >= bytes.byteSize()) {
            return null;
        }
        return new ImageIndexException(ImageIndexException.Kind.CORRUPT, file + ": the index file changed while in use: it is now "
                + now.size() + " bytes, " + bytes.byteSize() + " when it was opened; rebuild the index (--rebuild)", cause);
    }

    /** The identity (device and inode) of the file at {@code path}; null where the file system gives none. */
    private static Object identityOf(Path path) throws IOException {
        return Files.readAttributes(path, BasicFileAttributes.class).fileKey();
    }

    /** Where this index came from: its file, or the source it was built from. */
    public String origin() {
        return where;
    }

    static byte[] rootDigest(MemorySegment file, long blocksOffset, long blockCount) {
        java.security.MessageDigest sha256 = sha256();
        for (long b = 0; b < blockCount; b++) {
            sha256.update(file.asSlice(blocksOffset + b * IndexFile.RECORD_LENGTH, IndexFile.DIGEST_LENGTH).asByteBuffer());
        }
        return sha256.digest();
    }

    static java.security.MessageDigest sha256() {
        try {
            return java.security.MessageDigest.getInstance("SHA-256");
        } catch (java.security.NoSuchAlgorithmException e) {
            throw new IllegalStateException("this JDK has no SHA-256, which every Java SE platform must provide", e);
        }
    }

    @Override
    public void close() {
        arena.close();
    }
}
