package io.samepage.density;

import java.util.Objects;

/**
 * The one error type of the density module: the suite and the demo's scenario. Its {@link #kind()} says
 * whose fault it is: the image or index file the caller named, a run larger than the host, or the run
 * itself. The message names what went wrong and, where there is one, what to do.
 */
public final class DensityException extends RuntimeException {

    private static final long serialVersionUID = 1L;

    /** Why a run stopped. */
    public enum Kind {
        /** The image cannot be laid out, read or indexed, or changed while it was read: nothing was measured. */
        BAD_IMAGE,
        /**
         * The index file cannot be used: it is foreign, of another format version, corrupt or stale, is
         * not a regular file, or cannot be read or written where it was named (inside the image, over it,
         * in a folder that does not exist). No guest was loaded.
         */
        BAD_INDEX,
        /**
         * The run asked for does not fit: an image larger than one guest holds, or a copy of it per guest
         * larger than the host's memory. No guest was loaded.
         */
        TOO_LARGE,
        /** The report's directory ({@code --out}) is not a directory, or cannot be made or written. */
        BAD_OUTPUT,
        /**
         * A mode failed while it ran: the engine refused (an exhausted frame pool, counters that did not
         * settle), the kernel KSM helper process failed, or kernel KSM was busy with other processes; or
         * a check of the demo failed: a guest read back other bytes than it wrote or than the image
         * holds, or an image block no longer matched its digest.
         */
        FAILED
    }

    private final Kind kind;

    DensityException(Kind kind, String message) {
        super(message);
        this.kind = Objects.requireNonNull(kind, "kind");
    }

    static DensityException badImage(String message) {
        return new DensityException(Kind.BAD_IMAGE, message);
    }

    static DensityException badIndex(String message) {
        return new DensityException(Kind.BAD_INDEX, message);
    }

    static DensityException tooLarge(String message) {
        return new DensityException(Kind.TOO_LARGE, message);
    }

    static DensityException failed(String message) {
        return new DensityException(Kind.FAILED, message);
    }

    public Kind kind() {
        return kind;
    }
}
