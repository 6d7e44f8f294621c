package io.samepage.cli;

/**
 * Entry point of the {@code samepage} command: runs {@link SamepageCommand} and exits with its code ({@link #run}).
 * An error that escapes picocli's handlers, while the command line is built or on a heap too full to report it
 * there, is an internal error too: exit {@value SamepageCommand#EXIT_INTERNAL}, one line on stderr, no stack trace.
 */
public final class Main {

    private Main() {
    }

    public static void main(String[] args) {
        System.exit(run(SamepageCommand::newCommandLine, args));
    }

    static int run(java.util.function.Function<String[], picocli.CommandLine> built, String[] args) {
        try {
            return built.apply(args).execute(args);
        } catch (OutOfMemoryError | StackOverflowError | picocli.CommandLine.InitializationException e) {
            Throwable cause = e;        // the root: what failed where picocli made a command, which it wraps twice
            for (Throwable c = e.getCause(); c != null; c = c.getCause()) { cause = c; }
            System.err.print("samepage: internal error: ");     // two prints: no string of ours to make
            System.err.println(cause);
            return SamepageCommand.EXIT_INTERNAL;
        }
    }
}
