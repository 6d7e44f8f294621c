package io.samepage.core;

/**
 * The one error type of the engine. Its message says what an operator or an embedding program needs
 * to act: which guest, which address, which knob, and why.
 *
 * <p>An operation that throws it has changed nothing: a refused write leaves the guest's memory as
 * it was, a refused knob keeps its old value. The one exception: a write to a mapped guest that spans
 * pages stops at the page whose copy-on-write remap the host refused, and the message says so.
 */
public class DedupException extends RuntimeException {

    private static final long serialVersionUID = 1L;

    public DedupException(String message) {
        super(message);
    }

    /** With the host's refusal (a mapped guest's remap) as the cause. */
    public DedupException(String message, Throwable cause) {
        super(message, cause);
    }
}
