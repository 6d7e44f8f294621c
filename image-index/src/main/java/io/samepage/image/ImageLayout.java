package io.samepage.image;

import io.samepage.hashing.Pages;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.attribute.BasicFileAttributes;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

/**
 * How an image's bytes are laid out in 4 KiB blocks.
 *
 * <p>A single file (a raw disk image or any file) is one extent at offset 0. A directory tree is
 * laid out as follows, and this order is part of the index format:
 * <ol>
 *   <li>every regular file below the directory, found without following symbolic links (links,
 *       sockets, devices and the like are left out);</li>
 *   <li>sorted by its path relative to the directory, with {@code /} separators, compared as unsigned
 *       UTF-8 bytes;</li>
 *   <li>each file starting at the next 4 KiB boundary, its last block padded with zeros; empty files
 *       take no block.</li>
 * </ol>
 * A block therefore belongs to exactly one file, and a guest can load a file's blocks on its own.
 *
 * @param kind        file or directory
 * @param root        the path given
 * @param extents     one per file, in image order
 * @param sizeBytes   the laid-out size: a multiple of 4 KiB
 * @param mtimeNanos  the newest modification time among the files, in nanoseconds since the epoch
 */
public record ImageLayout(Kind kind, Path root, List<Extent> extents, long sizeBytes, long mtimeNanos) {

    /** What kind of source an image is. */
    public enum Kind {
        FILE(1), DIRECTORY(2);

        final int code;

        Kind(int code) {
            this.code = code;
        }

        static Kind ofCode(int code) {
            for (Kind kind : values()) {
                if (kind.code == code) {
                    return kind;
                }
            }
            return null;
        }
    }

    /**
     * One file of the image.
     *
     * @param path        relative to the root for a directory; the file name for a single file
     * @param imageOffset where its first byte lies in the image (4 KiB aligned)
     * @param length      its length in bytes
     */
    public record Extent(String path, long imageOffset, long length) {

        /** Blocks the file takes: its length rounded up to 4 KiB. */
        public long blocks() {
            return (length + Pages.PAGE_SIZE - 1) >>> Pages.PAGE_SHIFT;
        }
    }

    public ImageLayout {
        extents = List.copyOf(extents);
    }

    /** Blocks in the image. */
    public long blockCount() {
        return sizeBytes >>> Pages.PAGE_SHIFT;
    }

    /** The file a block belongs to (binary search over the extents). */
    public int extentOfBlock(long block) {
        long offset = block << Pages.PAGE_SHIFT;
        int low = 0;
        int high = extents.size() - 1;
        while (low < high) {
            int mid = (low + high + 1) >>> 1;
            if (extents.get(mid).imageOffset() <= offset) {
                low = mid;
            } else {
                high = mid - 1;
            }
        }
        return low;
    }

    /** Where a file of a directory image lives on disk. */
    public Path pathOf(Extent extent) {
        return kind == Kind.FILE ? root : root.resolve(extent.path());
    }

    /**
     * Lays out {@code source}: a regular file or a directory.
     *
     * @throws ImageIndexException BAD_SOURCE if it is neither, or is empty; IO if it cannot be read
     */
    public static ImageLayout of(Path source) {
        try {
            BasicFileAttributes attributes = Files.readAttributes(source, BasicFileAttributes.class);
            if (attributes.isRegularFile()) {
                long length = attributes.size();
                if (length == 0) {
                    throw new ImageIndexException(ImageIndexException.Kind.BAD_SOURCE, source + ": the file is empty");
                }
                Extent only = new Extent(String.valueOf(source.getFileName()), 0, length);
                return new ImageLayout(Kind.FILE, source, List.of(only), only.blocks() << Pages.PAGE_SHIFT,
                        attributes.lastModifiedTime().to(TimeUnit.NANOSECONDS));
            }
            if (attributes.isDirectory()) {
                return ofDirectory(source);
            }
            throw new ImageIndexException(ImageIndexException.Kind.BAD_SOURCE,
                    source + ": not a regular file or a directory");
        } catch (java.nio.file.NoSuchFileException e) {
            throw new ImageIndexException(ImageIndexException.Kind.BAD_SOURCE, source + ": no such file or directory", e);
        } catch (IOException e) {
            throw new ImageIndexException(ImageIndexException.Kind.IO, source + ": cannot read: " + e.getMessage(), e);
        }
    }

    private static ImageLayout ofDirectory(Path root) throws IOException {
        List<String[]> files = new ArrayList<>();
        long newest = 0;
        try (Stream<Path> walk = Files.walk(root)) {
            for (Path path : (Iterable<Path>) walk::iterator) {
                BasicFileAttributes attributes =
                        Files.readAttributes(path, BasicFileAttributes.class, LinkOption.NOFOLLOW_LINKS);
                if (attributes.isRegularFile()) {
                    String relative = root.relativize(path).toString().replace(path.getFileSystem().getSeparator(), "/");
                    files.add(new String[] {relative, Long.toString(attributes.size())});
                    newest = Math.max(newest, attributes.lastModifiedTime().to(TimeUnit.NANOSECONDS));
                }
            }
        }
        files.sort((a, b) -> Arrays.compareUnsigned(a[0].getBytes(StandardCharsets.UTF_8),
                b[0].getBytes(StandardCharsets.UTF_8)));
        List<Extent> extents = new ArrayList<>(files.size());
        long offset = 0;
        for (String[] file : files) {
            Extent extent = new Extent(file[0], offset, Long.parseLong(file[1]));
            extents.add(extent);
            offset += extent.blocks() << Pages.PAGE_SHIFT;
        }
        if (offset == 0) {
            throw new ImageIndexException(ImageIndexException.Kind.BAD_SOURCE, root + ": the directory holds no data");
        }
        return new ImageLayout(Kind.DIRECTORY, root, extents, offset, newest);
    }

    /**
     * Whether {@code other} (the image as it is now) is the image this layout describes: same kind,
     * size, newest modification time and file list.
     */
    public String differenceFrom(ImageLayout other) {
        if (kind != other.kind) {
            return "it was a " + kind.name().toLowerCase() + " and is now a " + other.kind.name().toLowerCase();
        }
        if (sizeBytes != other.sizeBytes) {
            return "its laid-out size was " + sizeBytes + " bytes and is now " + other.sizeBytes;
        }
        if (mtimeNanos != other.mtimeNanos) {
            return "it was modified since the index was built";
        }
        if (kind == Kind.DIRECTORY && !extents.equals(other.extents)) {
            return "its list of files or their sizes changed";
        }
        return null;
    }
}
