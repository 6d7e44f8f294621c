package io.samepage.image;

import io.samepage.hashing.Pages;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.attribute.BasicFileAttributes;
import java.nio.file.attribute.FileTime;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
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
 * <h2>Identity</h2>
 * An index maps a block whose digest is resident without reading the image, so it must refuse an image
 * that changed since it was built ({@link #differenceFrom}). Size and modification time alone do not
 * show it: user space sets the modification time ({@code touch -d}, {@code cp -p}, {@code rsync -t},
 * tar), and raw disk images of one size abound. So each file's <em>change stamp</em> is recorded too:
 * its status change time (ctime), which every {@code write}, truncation, rename, {@code touch}, {@code chmod},
 * {@code chown}, link and unlink moves and no system call sets to a chosen value (only root, by setting
 * the clock, or an offline edit of the file system can), and its inode number, which tells another
 * file at the same path. Not moved by it: writes through a shared mapping to a page already dirty (the
 * change time moves at a page's first write fault only), and a directory above a file swapped and
 * swapped back (the files are stamped and read by path); docs/image-index.md says so. A change stamp that differs makes the index stale even where the content did
 * not change ({@code chmod}, a hard link made to the image, a copy of image and index to another host):
 * that costs a rebuild, never a wrong block. The device number is left out: NFS, btrfs and overlayfs
 * number their devices anew at each mount, so every index on them would go stale at a reboot. Where
 * the file system has no change time (no {@code unix} attribute view: Windows, a zip file system), no
 * stamp is recorded ({@link #changeStamps()} is false) and identity rests on size, modification time
 * and files alone.
 *
 * @param kind         file or directory
 * @param root         the path given
 * @param extents      one per file, in image order
 * @param sizeBytes    the laid-out size: a multiple of 4 KiB
 * @param mtimeNanos   the newest modification time among the files, in nanoseconds since the epoch
 * @param changeStamps whether each extent holds its file's change time and inode number: false where
 *                     the file system has none, and every extent then holds 0 for both
 */
public record ImageLayout(Kind kind, Path root, List<Extent> extents, long sizeBytes, long mtimeNanos,
        boolean changeStamps) {

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
     * @param ctimeNanos  its status change time, nanoseconds since the epoch (0 if not recorded)
     * @param inode       its inode number (0 if not recorded)
     */
    public record Extent(String path, long imageOffset, long length, long ctimeNanos, long inode) {

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
     * How long after a file's change time a change to it may still leave that time as it is: a kernel
     * without fine-grained ("multigrain") timestamps, as before Linux 6.13, takes them from a clock that
     * moves once per timer tick (at most 10 ms apart, at HZ=100), so two writes in one tick give one
     * change time. Twice the longest tick.
     */
    static final long SETTLE_NANOS = 20_000_000L;
    /** The same for a file system that keeps whole seconds (nanoseconds all 0): up to 2 s apart (FAT). */
    static final long SETTLE_WHOLE_SECONDS_NANOS = 2_000_000_000L + SETTLE_NANOS;
    /** Waits {@link #settled} makes at most, for an image that keeps changing (then the build goes on). */
    private static final int SETTLE_ROUNDS = 3;

    /**
     * {@link #of}, taken at a moment after which any change to the image moves a change time. An image
     * whose newest change time is more recent than the clock's step ({@link #unsettledNanos}) could be
     * written again within the same step, unseen; this waits that step out and lays the image out again
     * first, up to {@value #SETTLE_ROUNDS} times while it keeps changing. A step that goes by with nothing
     * moved ends the wait: a change time still ahead of the clock then is the clock's (a skew, another
     * host's clock over NFS), which waiting does not cure, and the wait is only as good as the clocks'
     * agreement.
     *
     * @throws ImageIndexException as {@link #of}; IO if interrupted while waiting
     */
    static ImageLayout settled(Path source) {
        return settled(source, () -> {
            java.time.Instant now = java.time.Instant.now();
            return now.getEpochSecond() * 1_000_000_000L + now.getNano();
        }, nanos -> Thread.sleep(java.time.Duration.ofNanos(nanos)));
    }

    /** A wait of some nanoseconds; a test's passes time on its own clock. */
    interface Sleeper {
        void sleep(long nanos) throws InterruptedException;
    }

    /** {@link #settled(Path)} on the wall clock {@code nowNanos} (since the epoch), waiting with {@code sleeper}. */
    static ImageLayout settled(Path source, java.util.function.LongSupplier nowNanos, Sleeper sleeper) {
        ImageLayout layout = of(source);
        for (int round = 0; round < SETTLE_ROUNDS; round++) {
            long wait = layout.unsettledNanos(nowNanos.getAsLong());
            if (wait == 0) {
                return layout;
            }
            try {
                sleeper.sleep(wait);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new ImageIndexException(ImageIndexException.Kind.IO, "index build of " + source + " interrupted",
                        e);
            }
            ImageLayout again = of(source);
            if (again.equals(layout)) {
                return again;       // a step went by and nothing moved: a change time still ahead is the clock's
            }
            layout = again;
        }
        return layout;
    }

    /**
     * Nanoseconds from {@code nowNanos} (wall clock, since the epoch) until the newest change time of
     * the image is older than the clock's step ({@link #SETTLE_NANOS}, or {@link #SETTLE_WHOLE_SECONDS_NANOS}
     * where it is a whole second), at most that step; 0 if it is already, or no change time was recorded.
     */
    long unsettledNanos(long nowNanos) {
        if (!changeStamps) {
            return 0;
        }
        long newest = Long.MIN_VALUE;
        for (Extent extent : extents) {
            newest = Math.max(newest, extent.ctimeNanos());
        }
        long step = newest % 1_000_000_000L == 0 ? SETTLE_WHOLE_SECONDS_NANOS : SETTLE_NANOS;
        return Math.max(0, Math.min(step, newest + step - nowNanos));
    }

    /** This layout with its files found under {@code source}. */
    ImageLayout withRoot(Path source) {
        return new ImageLayout(kind, source, extents, sizeBytes, mtimeNanos, changeStamps);
    }

    /**
     * Lays out {@code source}: a regular file or a directory.
     *
     * @throws ImageIndexException BAD_SOURCE if it is neither, or is empty; IO if it cannot be read
     */
    public static ImageLayout of(Path source) {
        try {
            Stat attributes = Stat.of(source);
            if (attributes.regular()) {
                if (attributes.size() == 0) {
                    throw new ImageIndexException(ImageIndexException.Kind.BAD_SOURCE, source + ": the file is empty");
                }
                Extent only = attributes.extent(String.valueOf(source.getFileName()), 0);
                return new ImageLayout(Kind.FILE, source, List.of(only), only.blocks() << Pages.PAGE_SHIFT,
                        attributes.mtimeNanos(), Stat.hasChangeStamps(source));
            }
            if (attributes.directory()) {
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
        record Found(String relative, byte[] utf8, Stat stat) {
        }
        List<Found> files = new ArrayList<>();
        long newest = 0;
        try (Stream<Path> walk = Files.walk(root)) {
            for (Path path : (Iterable<Path>) walk::iterator) {
                Stat attributes = Stat.of(path, LinkOption.NOFOLLOW_LINKS);
                if (attributes.regular()) {
                    String relative = root.relativize(path).toString().replace(path.getFileSystem().getSeparator(), "/");
                    files.add(new Found(relative, relative.getBytes(StandardCharsets.UTF_8), attributes));
                    newest = Math.max(newest, attributes.mtimeNanos());
                }
            }
        }
        files.sort((a, b) -> Arrays.compareUnsigned(a.utf8(), b.utf8()));
        List<Extent> extents = new ArrayList<>(files.size());
        long offset = 0;
        for (Found file : files) {
            Extent extent = file.stat().extent(file.relative(), offset);
            extents.add(extent);
            offset += extent.blocks() << Pages.PAGE_SHIFT;
        }
        if (offset == 0) {
            throw new ImageIndexException(ImageIndexException.Kind.BAD_SOURCE, root + ": the directory holds no data");
        }
        return new ImageLayout(Kind.DIRECTORY, root, extents, offset, newest, Stat.hasChangeStamps(root));
    }

    /**
     * How {@code other} (the image as it is now) differs from the image this layout describes, or null
     * if it is the same: kind, laid-out size, newest modification time, the list of files and their
     * sizes, then each file's inode number and change time. The answer reads after "the image", names a
     * file of a directory image, and is one printable line.
     */
    public String differenceFrom(ImageLayout other) {
        if (kind != other.kind) {
            return "it was a " + kind.name().toLowerCase() + " and is now a " + other.kind.name().toLowerCase();
        }
        if (sizeBytes != other.sizeBytes) {
            return "its laid-out size was " + sizeBytes + " bytes and is now " + other.sizeBytes;
        }
        if (mtimeNanos != other.mtimeNanos) {
            return "it was modified: its modification time moved";
        }
        if (kind == Kind.DIRECTORY && !sameFiles(other)) {
            return "its list of files or their sizes changed";
        }
        if (changeStamps != other.changeStamps) {
            return changeStamps ? "its files' change times were recorded and cannot be read now"
                    : "its files' change times were not recorded (the file system had none)";
        }
        for (int i = 0; changeStamps && i < extents.size(); i++) {
            Extent was = extents.get(i);
            Extent now = other.extents.get(i);
            String name = kind == Kind.FILE ? "it" : IndexFile.printable(was.path());
            if (was.inode() != now.inode()) {
                return name + " is another file now (inode " + now.inode() + ", was " + was.inode() + ")";
            }
            if (was.ctimeNanos() != now.ctimeNanos()) {
                return name + " was changed: its change time moved (a write, rename, touch, chmod or link)";
            }
        }
        return null;
    }

    private boolean sameFiles(ImageLayout other) {
        if (extents.size() != other.extents.size()) {
            return false;
        }
        for (int i = 0; i < extents.size(); i++) {
            Extent was = extents.get(i);
            Extent now = other.extents.get(i);
            if (!was.path().equals(now.path()) || was.length() != now.length()) {
                return false;
            }
        }
        return true;
    }

    /**
     * One file's attributes, read at once (one stat): a change between reading its size and its change
     * time would otherwise pair the old size with the new stamp.
     */
    private record Stat(boolean regular, boolean directory, long size, long mtimeNanos, long ctimeNanos, long inode) {

        private static final String UNIX = "unix:isRegularFile,isDirectory,size,lastModifiedTime,ctime,ino";

        /** Whether {@code path}'s file system gives change times and inode numbers. */
        static boolean hasChangeStamps(Path path) {
            return path.getFileSystem().supportedFileAttributeViews().contains("unix");
        }

        static Stat of(Path path, LinkOption... options) throws IOException {
            if (!hasChangeStamps(path)) {
                BasicFileAttributes basic = Files.readAttributes(path, BasicFileAttributes.class, options);
                return new Stat(basic.isRegularFile(), basic.isDirectory(), basic.size(),
                        basic.lastModifiedTime().to(TimeUnit.NANOSECONDS), 0, 0);
            }
            Map<String, Object> unix = Files.readAttributes(path, UNIX, options);
            return new Stat((Boolean) unix.get("isRegularFile"), (Boolean) unix.get("isDirectory"),
                    (Long) unix.get("size"), ((FileTime) unix.get("lastModifiedTime")).to(TimeUnit.NANOSECONDS),
                    ((FileTime) unix.get("ctime")).to(TimeUnit.NANOSECONDS), (Long) unix.get("ino"));
        }

        Extent extent(String path, long imageOffset) {
            return new Extent(path, imageOffset, size, ctimeNanos, inode);
        }
    }
}
