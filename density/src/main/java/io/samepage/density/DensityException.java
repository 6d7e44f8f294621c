package io.samepage.density;

import java.util.Objects;

/**
 * The one error type of the density suite. Its {@link #kind()} says whose fault it is: the image the
 * caller named, or the run itself. The message names what went wrong and, where there is one, what to do.
 */
public final class DensityException extends RuntimeException {

    private static final long serialVersionUID = 1L;

    /** Why a run stopped. */
    public enum Kind {
        /** The image cannot be laid out, read or indexed, or changed while it was read: nothing was measured. */
        BAD_IMAGE,
        /**
         * A mode failed while it ran: the engine refused (an exhausted frame pool, counters that did not
         * settle), the kernel KSM helper process failed, or kernel KSM was busy with other processes.
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

    static DensityException failed(String message) {
        return new DensityException(Kind.FAILED, message);
    }

    public Kind kind() {
        return kind;
    }
}
