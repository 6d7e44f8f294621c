package io.samepage.core;

/**
 * The one error type of the engine. Its message says what an operator or an embedding program needs
 * to act: which guest, which address, which knob, and why.
 *
 * <p>An operation that throws it has changed nothing: a refused write leaves the guest's memory as
 * it was, a refused knob keeps its old value.
 */
public class DedupException extends RuntimeException {

    private static final long serialVersionUID = 1L;

    public DedupException(String message) {
        super(message);
    }
}
