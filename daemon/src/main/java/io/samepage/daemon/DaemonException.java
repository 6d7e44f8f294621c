package io.samepage.daemon;

import java.util.Objects;

/**
 * The one error type of the daemon: its {@link #kind()} is what an embedding program switches on (the
 * CLI maps it to an exit code), its message what an operator needs to act, on one line: the config
 * file and line ({@code FILE:LINE: what is wrong}), the source, the counters file or the port.
 */
public final class DaemonException extends RuntimeException {

    private static final long serialVersionUID = 1L;

    /** What was refused or failed. */
    public enum Kind {
        /**
         * A config the daemon cannot run: a config file line or a {@link Daemon.Context} setting is wrong,
         * or the sources do not fit the pool; nothing was started. For a reload: refused, nothing changed.
         */
        CONFIG,
        /**
         * A source cannot be used as given: a file that is missing, unreadable, empty or not whole pages;
         * a process that cannot be read; {@code qemu} finding no guest. Nothing was started.
         */
        SOURCE,
        /**
         * The counters file cannot be used: its directory is missing, a file there is not a counters file,
         * another daemon holds it, or it cannot be created; for a reader, it is missing, unreadable,
         * truncated, foreign or of another layout version.
         */
        COUNTERS_FILE,
        /** The metrics port cannot be listened on; nothing was started. */
        METRICS_PORT,
        /** A failure while working: a source that could not be read to its end, the frame pool exhausted later. */
        FAILED
    }

    private final Kind kind;

    public DaemonException(Kind kind, String message) {
        super(message);
        this.kind = Objects.requireNonNull(kind, "kind");
    }

    public DaemonException(Kind kind, String message, Throwable cause) {
        super(message, cause);
        this.kind = Objects.requireNonNull(kind, "kind");
    }

    /** What was refused or failed. */
    public Kind kind() {
        return kind;
    }

    /**
     * An error for an operator's line: a Samepage error's message, which names the culprit itself; any
     * other error with its type, which may be all it says.
     */
    static String oneLine(Throwable e) {
        boolean ours = e.getClass().getName().startsWith("io.samepage.") && e.getMessage() != null;
        return ours ? e.getMessage() : e.toString();
    }
}
