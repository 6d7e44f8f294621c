package io.samepage.core;

/**
 * The one error type of the engine. Its {@link #kind()} is what an embedding program switches on; its
 * message says what an operator needs to act: which guest, which address, which knob, and why.
 *
 * <p>An operation that throws it has changed nothing (dedup-core's failure atomicity, stated in the
 * package overview): a refused write leaves the guest's memory as it was, a refused knob keeps its
 * old value, a refused merge leaves both pages as they were. The one exception: a write (or copy) to
 * a mapped guest that spans pages stops at the page whose copy-on-write remap the host refused, and the
 * message says so. {@link Kind#NOT_SETTLED} reports a bound reached, not a refusal: the full scans done
 * before it stand, each of them complete.
 */
public class DedupException extends RuntimeException {

    private static final long serialVersionUID = 1L;

    /** Why an operation was refused. */
    public enum Kind {
        /** The frame pool has too few free frames for the operation. */
        POOL_EXHAUSTED,
        /** An argument is out of range or malformed: an address, a size, a name, a setting. */
        INVALID_ARGUMENT,
        /** A knob refused a value, or a change that needs the engine in another state. */
        KNOB_REFUSED,
        /** The guest (or engine) has been destroyed or closed. */
        DESTROYED,
        /** The host refused what the engine asked of it: a mapping, a remap, memory. */
        HOST_REFUSED,
        /**
         * Guest memory kept changing while the scanner was stepped until stable: full scans still changed
         * the counters when {@link Scanner#scanUntilStable} reached its bound.
         */
        NOT_SETTLED
    }

    private final Kind kind;

    public DedupException(Kind kind, String message) {
        super(message);
        this.kind = java.util.Objects.requireNonNull(kind, "kind");
    }

    /** With the host's refusal (a mapped guest's remap, an allocation) as the cause. */
    public DedupException(Kind kind, String message, Throwable cause) {
        super(message, cause);
        this.kind = java.util.Objects.requireNonNull(kind, "kind");
    }

    /** Why the operation was refused. */
    public Kind kind() {
        return kind;
    }
}
