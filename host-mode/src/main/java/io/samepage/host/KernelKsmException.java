package io.samepage.host;

import java.util.List;

/**
 * The error type of kernel KSM control ({@link KernelKsm}): its message is what an operator needs to
 * act (which knob, which value, why, and what to do), its {@link Kind} what a program needs to decide.
 *
 * <p>A refused write ({@link Kind#INVALID}, {@link Kind#ABSENT}, {@link Kind#READ_ONLY}) has written
 * nothing. A write the kernel refused part way through a batch ({@link Kind#REFUSED}, {@link Kind#IO})
 * lists in {@link #written()} the knobs it had already written, in order.
 */
public final class KernelKsmException extends HostException {

    private static final long serialVersionUID = 1L;

    /** Why kernel KSM could not be read or written. */
    public enum Kind {
        /** This kernel has no KSM: no {@code /sys/kernel/mm/ksm} (CONFIG_KSM off, or no sysfs). */
        ABSENT,
        /** KSM is there but its knobs cannot be written: not root, or a read-only sysfs. */
        READ_ONLY,
        /** A knob name or value KSM's own rules refuse; checked before anything is written. */
        INVALID,
        /** The kernel refused a write (EINVAL, EBUSY): its state differs from what was validated. */
        REFUSED,
        /** Reading or writing a KSM file failed for another reason. */
        IO
    }

    private final Kind kind;
    private final transient List<KnobChange> written;

    KernelKsmException(Kind kind, String message) {
        this(kind, message, List.of(), null);
    }

    KernelKsmException(Kind kind, String message, List<KnobChange> written, Throwable cause) {
        super(message, cause);
        this.kind = kind;
        this.written = List.copyOf(written);
    }

    public Kind kind() {
        return kind;
    }

    /** The knobs a failed batch wrote before it stopped, in write order; empty if it wrote none. */
    public List<KnobChange> written() {
        return written;
    }
}
