package io.samepage.image;

import io.samepage.hashing.Pages;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.ClosedByInterruptException;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.BasicFileAttributes;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Reads blocks of an image laid out by {@link ImageLayout}: the file's bytes, the last block of a
 * file padded with zeros. Keeps a few files open (least recently used closed first); a file whose read
 * failed is closed, and opened again by the next read of it.
 *
 * <p>Single threaded; close it when done.
 */
final class BlockReader implements AutoCloseable {

    private static final int OPEN_FILES = 32;

    private final ImageLayout layout;
    private final Map<Integer, FileChannel> open = new LinkedHashMap<>(OPEN_FILES, 0.75f, true);

    BlockReader(ImageLayout layout) {
        this.layout = layout;
    }

    /**
     * Reads {@code count} consecutive blocks starting at {@code block}, all of one file, into
     * {@code into} from its position; the buffer must have room for {@code count * 4096} bytes.
     */
    void read(long block, int count, ByteBuffer into) {
        int index = layout.extentOfBlock(block);
        ImageLayout.Extent extent = layout.extents().get(index);
        long inFile = (block << Pages.PAGE_SHIFT) - extent.imageOffset();
        long wanted = (long) count << Pages.PAGE_SHIFT;
        int start = into.position();
        long available = Math.max(0, Math.min(wanted, extent.length() - inFile));
        try {
            FileChannel channel = channel(index, extent);
            into.limit(start + (int) available);
            long at = inFile;
            while (into.hasRemaining()) {
                int n = channel.read(into, at);
                if (n < 0) {
                    throw new ImageIndexException(ImageIndexException.Kind.BLOCK_MISMATCH,
                            layout.pathOf(extent) + ": the file is shorter than the index says (block " + block
                                    + "); the image changed, rebuild the index");
                }
                at += n;
            }
        } catch (ClosedByInterruptException e) {
            drop(index);
            throw new ImageIndexException(ImageIndexException.Kind.IO,
                    "interrupted while reading block " + block + " of " + layout.pathOf(extent), e);
        } catch (IOException e) {
            drop(index);
            throw new ImageIndexException(ImageIndexException.Kind.IO,
                    layout.pathOf(extent) + ": cannot read block " + block + ": " + IoReason.of(e), e);
        }
        into.limit(start + (int) wanted);
        while (into.hasRemaining()) {
            into.put((byte) 0);
        }
    }

    /** Blocks from {@code block} to the end of its file, at most {@code max}. */
    int runLength(long block, int max) {
        return runLength(layout, block, max);
    }

    /** Blocks of {@code layout} from {@code block} to the end of its file, at most {@code max}. */
    static int runLength(ImageLayout layout, long block, int max) {
        ImageLayout.Extent extent = layout.extents().get(layout.extentOfBlock(block));
        long end = (extent.imageOffset() >>> Pages.PAGE_SHIFT) + extent.blocks();
        return (int) Math.min(max, end - block);
    }

    private FileChannel channel(int index, ImageLayout.Extent extent) throws IOException {
        FileChannel channel = open.get(index);
        if (channel == null) {
            if (open.size() >= OPEN_FILES) {
                var eldest = open.entrySet().iterator().next();
                eldest.getValue().close();
                open.remove(eldest.getKey());
            }
            Path path = layout.pathOf(extent);
            checkRegularFile(path);
            channel = FileChannel.open(path, StandardOpenOption.READ);
            open.put(index, channel);
        }
        return channel;
    }

    /**
     * Refuses a file of the image that is no longer a regular file, before it is opened: opening a FIFO
     * would block, uninterruptibly, until a writer came. A file of a directory image is looked at without
     * following a link, as {@link ImageLayout} laid it out (a link was left out of the layout); a file
     * image was named by the caller, link or not, and is followed. A file swapped between this check and
     * the open still gets through.
     */
    private void checkRegularFile(Path path) throws IOException {
        LinkOption[] options = layout.kind() == ImageLayout.Kind.DIRECTORY ? new LinkOption[] {LinkOption.NOFOLLOW_LINKS}
                : new LinkOption[0];
        BasicFileAttributes attributes = Files.readAttributes(path, BasicFileAttributes.class, options);
        if (!attributes.isRegularFile()) {
            String now = attributes.isDirectory() ? "a directory"
                    : attributes.isSymbolicLink() ? "a symbolic link" : "a FIFO, socket or device";
            throw new ImageIndexException(ImageIndexException.Kind.STALE, path + ": no longer a regular file (now "
                    + now + "); the image changed since the index was built: rebuild the index (--rebuild)");
        }
    }

    /**
     * Closes and forgets file {@code index}'s channel after a failed read, so the next read opens the file
     * again: a channel an interrupt closed ({@link ClosedByInterruptException}) would otherwise fail every
     * later read of this reader.
     */
    private void drop(int index) {
        FileChannel channel = open.remove(index);
        if (channel != null) {
            try {
                channel.close();
            } catch (IOException ignored) {
                // closing a read-only channel loses nothing
            }
        }
    }

    @Override
    public void close() {
        for (FileChannel channel : open.values()) {
            try {
                channel.close();
            } catch (IOException ignored) {
                // closing a read-only channel loses nothing
            }
        }
        open.clear();
    }
}
