package io.samepage.image;

/**
 * The one error type of the image index. {@link #kind()} says what went wrong, so a caller can choose
 * an exit code; the message names the file (and block) and says what to do.
 */
public class ImageIndexException extends RuntimeException {

    private static final long serialVersionUID = 1L;

    /** What went wrong. */
    public enum Kind {
        /** The file is not a Samepage index at all (wrong magic number). */
        FOREIGN,
        /** A Samepage index of a version this build does not read. */
        VERSION,
        /** A Samepage index whose bytes are damaged or cut short (checksum, bounds, structure). */
        CORRUPT,
        /**
         * The index describes another state of the image: its size, modification time or file list, or a
         * file's change time or inode number differ (the image was written, replaced, touched, renamed,
         * given another mode or linked since the index was built).
         */
        STALE,
        /**
         * The image changed under a reader: a block read does not match its digest in the index, a file is
         * shorter than the index says, or the image changed while its index was being built.
         */
        BLOCK_MISMATCH,
        /** The image or index could not be read or written. */
        IO,
        /** The source is not something an index can be built from. */
        BAD_SOURCE,
        /**
         * The index file could not be written, having passed {@link ImageIndex#checkWritable} (a full disk,
         * a file system that takes no new file): a failure while working, not the caller's input.
         */
        WRITE
    }

    private final Kind kind;

    public ImageIndexException(Kind kind, String message) {
        super(message);
        this.kind = kind;
    }

    public ImageIndexException(Kind kind, String message, Throwable cause) {
        super(message, cause);
        this.kind = kind;
    }

    public Kind kind() {
        return kind;
    }
}
