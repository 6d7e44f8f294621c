package io.samepage.daemon;

import io.samepage.core.Guest;
import io.samepage.daemon.DaemonException.Kind;
import io.samepage.hashing.Pages;
import io.samepage.host.GuestSketch;
import io.samepage.host.PageDigestEstimator;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.AccessDeniedException;
import java.nio.file.Files;
import java.nio.file.InvalidPathException;
import java.nio.file.LinkOption;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

/**
 * A file source of the daemon and of {@code samepage scan}: a raw memory dump or a QEMU memory-backend
 * file, checked before anything is loaded, then read into a guest of the same size.
 *
 * <p>Loading reads the file in {@value #CHUNK_BYTES}-byte chunks through a {@link FileChannel} into
 * one off-heap buffer and writes each chunk into the guest at the same offset. A chunk that is all
 * zeros is not written: the guest's page there stays never-written, maps the zero frame, costs no frame
 * and is in no counter, as untouched guest memory (a hole in a memory-backend file) is for KSM. Zero
 * pages inside a chunk that holds data are written, as a guest that zeroed them holds them: with
 * {@code use_zero_pages} they become {@code ksm_zero_pages}, without it they merge with each other.
 *
 * @param name  the path as the user gave it: the guest's name in every report
 * @param path  the path, resolved
 * @param bytes the file's length, a positive multiple of 4096
 */
public record SourceFile(String name, Path path, long bytes) {

    /** Bytes read and written per step; an all-zero chunk of this size is skipped. */
    public static final int CHUNK_BYTES = 1 << 20;

    /** The largest guest the engine holds: 2^31 - 9 pages. */
    private static final long MAX_PAGES = Integer.MAX_VALUE - 8;

    /**
     * Checks that {@code name} is a readable regular file whose length is a positive multiple of 4096
     * bytes, by opening it.
     *
     * @throws DaemonException {@link DaemonException.Kind#SOURCE}, whose message names the file and says what
     *                         is wrong
     */
    public static SourceFile check(String name) {
        Path path;
        try {
            path = Path.of(name);
        } catch (InvalidPathException e) {
            throw bad(name, "not a valid path (" + e.getReason() + ")");
        }
        if (Files.isDirectory(path)) {
            throw bad(name, "is a directory, not a memory dump");
        }
        if (Files.exists(path) && !Files.isRegularFile(path)) {
            throw bad(name, "is not a regular file");
        }
        long bytes;
        try (FileChannel channel = FileChannel.open(path, StandardOpenOption.READ)) {
            bytes = channel.size();
        } catch (NoSuchFileException e) {
            boolean brokenLink = Files.exists(path, LinkOption.NOFOLLOW_LINKS);
            throw bad(name, brokenLink ? "is a broken symbolic link" : "no such file");
        } catch (AccessDeniedException e) {
            throw bad(name, "cannot be read: permission denied");
        } catch (IOException e) {
            throw bad(name, "cannot be read: " + IoErrors.reason(e));
        }
        if (bytes == 0) {
            throw bad(name, "is empty (0 bytes)");
        }
        if (bytes % Pages.PAGE_SIZE != 0) {
            throw bad(name, "length " + bytes + " is not a multiple of " + Pages.PAGE_SIZE);
        }
        if (bytes / Pages.PAGE_SIZE > MAX_PAGES) {
            throw bad(name, "length " + bytes + " is more than a guest holds (" + MAX_PAGES + " pages of 4096 bytes)");
        }
        return new SourceFile(name, path, bytes);
    }

    /**
     * Reads the file into {@code guest}, which must be at least as large.
     *
     * @param buffer reused across sources
     * @return pages written (pages of all-zero chunks are not)
     * @throws DaemonException {@link DaemonException.Kind#FAILED} if the file cannot be read or is shorter
     *                         than when checked
     */
    public long loadInto(Guest guest, ChunkBuffer buffer) {
        return read(buffer, guest::write);
    }

    /**
     * {@link #loadInto(Guest, ChunkBuffer)}, adding every page written to {@code sketch} too; the pages of
     * all-zero chunks are neither written nor sketched, as {@link #estimateInto} does not read them, so
     * the two paths give the same sketch.
     */
    public long loadInto(Guest guest, ChunkBuffer buffer, GuestSketch sketch) {
        return read(buffer, (at, chunk) -> {
            for (long page = 0; page < chunk.byteSize(); page += Pages.PAGE_SIZE) {
                sketch.addPage(chunk, page);
            }
            guest.write(at, chunk);
        });
    }

    private long read(ChunkBuffer buffer, ChunkSink sink) {
        long written = 0;
        try (FileChannel channel = FileChannel.open(path, StandardOpenOption.READ)) {
            ByteBuffer window = buffer.data().asByteBuffer();
            for (long at = 0; at < bytes; at += CHUNK_BYTES) {
                int length = (int) Math.min(CHUNK_BYTES, bytes - at);
                window.clear().limit(length);
                while (window.hasRemaining()) {
                    if (channel.read(window, at + window.position()) < 0) {
                        throw new DaemonException(Kind.FAILED, name + ": shrank to " + (at + window.position())
                                + " bytes while being read (it was " + bytes + ")");
                    }
                }
                MemorySegment chunk = buffer.data().asSlice(0, length);
                if (chunk.mismatch(buffer.zeros().asSlice(0, length)) == -1) {
                    continue;
                }
                sink.accept(at, chunk);
                written += length / Pages.PAGE_SIZE;
            }
        } catch (IOException e) {
            throw new DaemonException(Kind.FAILED, name + ": read failed: " + IoErrors.reason(e), e);
        }
        return written;
    }

    /**
     * Counts the file's pages into {@code estimator}, as the current guest (begun by the caller), and
     * keeps none; all-zero chunks are skipped as {@link #loadInto} skips them.
     *
     * @return pages counted
     * @throws DaemonException as {@link #loadInto}
     */
    public long estimateInto(PageDigestEstimator estimator, ChunkBuffer buffer) {
        return read(buffer, (at, chunk) -> estimator.accept(chunk));
    }

    /** Receives one chunk that is not all zeros, at its offset in the file; valid during the call. */
    @FunctionalInterface
    private interface ChunkSink {
        void accept(long at, MemorySegment chunk);
    }

    /** {@link #loadInto}'s off-heap buffer for one chunk, and a chunk of zeros to compare it with. */
    public record ChunkBuffer(MemorySegment data, MemorySegment zeros) {

        public static ChunkBuffer allocate(Arena arena) {
            return new ChunkBuffer(arena.allocate(CHUNK_BYTES, Pages.PAGE_SIZE), arena.allocate(CHUNK_BYTES));
        }
    }

    private static DaemonException bad(String name, String what) {
        return new DaemonException(Kind.SOURCE, name + ": " + what);
    }
}
