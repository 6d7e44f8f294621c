package io.samepage.cli;

/**
 * The one error type of the CLI: a subcommand stops with its one-line message on stderr and its exit
 * code. The message names what is wrong (a file, an option, a guest) and what to do about it.
 */
public final class CommandException extends RuntimeException {

    private static final long serialVersionUID = 1L;

    private final int exitCode;

    CommandException(int exitCode, String message) {
        super(message);
        this.exitCode = exitCode;
    }

    /** Bad usage or bad input (exit code 2): nothing was done. */
    public static CommandException badInput(String message) {
        return new CommandException(SamepageCommand.EXIT_USAGE, message);
    }

    /** Refuses ({@link #badInput}) {@code value} of {@code option} outside {@code min} to {@code max}. */
    public static void requireRange(String option, long value, long min, long max) {
        if (value < min || value > max) {
            throw badInput(option + " " + value + ": must be " + min + " to " + max);
        }
    }

    /** A failure while working (exit code 1). */
    public static CommandException failure(String message) {
        return new CommandException(SamepageCommand.EXIT_FAILURE, message);
    }

    public int exitCode() {
        return exitCode;
    }
}
