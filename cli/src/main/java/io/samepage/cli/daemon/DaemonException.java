package io.samepage.cli.daemon;

/**
 * The one error type of the daemon's pieces: a config file line that is wrong
 * ({@code FILE:LINE: what is wrong}), or a counters file that cannot be read or written. The message is
 * what an operator needs to act; the CLI prints it on one line and exits 2.
 */
public final class DaemonException extends RuntimeException {

    private static final long serialVersionUID = 1L;

    public DaemonException(String message) {
        super(message);
    }

    public DaemonException(String message, Throwable cause) {
        super(message, cause);
    }
}
