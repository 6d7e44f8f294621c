package io.samepage.cli;

import io.samepage.daemon.DaemonException;
import io.samepage.daemon.IoErrors;
import io.samepage.daemon.OneLine;
import io.samepage.density.DensityException;
import java.io.PrintWriter;
import java.io.UncheckedIOException;
import java.util.List;
import picocli.CommandLine;

/**
 * The one place the CLI turns an error into what the user sees: one line on stderr, {@code samepage
 * <command>: <what is wrong>}, and an exit code from {@link SamepageCommand}. No exception class name and
 * no stack trace reaches the user. The line stays one whatever the message quotes (a file name, a value
 * read from a file, an argument): {@link OneLine} escapes what would break it.
 *
 * <ul>
 *   <li>A parse error: its line, then where to read more ({@code see 'samepage scan --help'}); a
 *       mistyped subcommand or option gets the nearest name. Exit {@value SamepageCommand#EXIT_USAGE}.
 *   <li>{@link CommandException}: its message and its code. {@link DaemonException}, from the daemon and
 *       the sources it shares with {@code scan}: its message; a failure while working
 *       ({@link DaemonException.Kind#FAILED}) exits {@value SamepageCommand#EXIT_FAILURE}, every other kind
 *       (a bad config, source, counters file or port) is bad input.
 *   <li>An I/O error no subcommand caught: the file and the reason in words ({@link IoErrors}), exit
 *       {@value SamepageCommand#EXIT_FAILURE}; so does the host's refusal of an engine's memory (HOST_REFUSED).
 *   <li>{@link DensityException}, from the demo's scenario: its message; a failure while working
 *       ({@link DensityException.Kind#FAILED}) exits {@value SamepageCommand#EXIT_FAILURE}, every other
 *       kind (a bad image or index file, a run larger than the host) is bad input.
 *   <li>{@link OutOfMemoryError}, {@link StackOverflowError} ({@link Execution} hands them over) and any
 *       other exception: an internal error, exit {@value SamepageCommand#EXIT_INTERNAL}.
 * </ul>
 */
final class ErrorHandler implements CommandLine.IExecutionExceptionHandler, CommandLine.IParameterExceptionHandler {

    /** How far a mistyped subcommand may be from the one suggested: two edits ("scna" for "scan"). */
    private static final int MAX_TYPOS = 2;

    @Override
    public int handleParseException(CommandLine.ParameterException e, String[] args) {
        CommandLine command = e.getCommandLine();
        String name = command.getCommandSpec().qualifiedName();
        PrintWriter err = command.getErr();
        err.println(name + ": " + OneLine.of(parseError(e)));
        err.println("see '" + name + " --help'");
        err.flush();
        return SamepageCommand.EXIT_USAGE;
    }

    @Override
    public int handleExecutionException(Exception e, CommandLine command, CommandLine.ParseResult parseResult) {
        Throwable thrown = e instanceof CommandLine.ExecutionException && e.getCause() instanceof Error error
                ? error : e;
        PrintWriter err = command.getErr();
        err.println(command.getCommandSpec().qualifiedName() + ": " + OneLine.of(message(thrown)));
        err.flush();
        return exitCode(thrown);
    }

    /** The exit code of what a subcommand threw. */
    static int exitCode(Throwable thrown) {
        return switch (thrown) {
            case CommandException e -> e.exitCode();
            case DaemonException e -> e.kind() == DaemonException.Kind.FAILED ? SamepageCommand.EXIT_FAILURE
                    : SamepageCommand.EXIT_USAGE;
            case UncheckedIOException e -> SamepageCommand.EXIT_FAILURE;
            case io.samepage.core.DedupException e when e.kind() == io.samepage.core.DedupException.Kind.HOST_REFUSED -> SamepageCommand.EXIT_FAILURE;
            case DensityException e -> e.kind() == DensityException.Kind.FAILED ? SamepageCommand.EXIT_FAILURE
                    : SamepageCommand.EXIT_USAGE;
            default -> SamepageCommand.EXIT_INTERNAL;
        };
    }

    private static String message(Throwable thrown) {
        return switch (thrown) {
            case CommandException e -> e.getMessage();
            case DaemonException e -> e.getMessage();
            case UncheckedIOException e -> IoErrors.reason(e.getCause());
            case io.samepage.core.DedupException e when e.kind() == io.samepage.core.DedupException.Kind.HOST_REFUSED -> e.getMessage();
            case DensityException e -> e.getMessage();
            case OutOfMemoryError e -> "out of memory (" + e.getMessage() + "); give Java more with "
                    + "SAMEPAGE_JAVA_OPTS=-Xmx<size>, or ask for less";
            default -> "internal error: " + (thrown.getMessage() != null ? thrown.getMessage()
                    : thrown.getClass().getSimpleName()) + " (a bug in samepage; please report it with the command line)";
        };
    }

    /** Picocli's message, or for a mistyped subcommand or option, what it is and the nearest name. */
    private static String parseError(CommandLine.ParameterException e) {
        if (!(e instanceof CommandLine.UnmatchedArgumentException unmatched) || unmatched.getUnmatched().isEmpty()) {
            return e.getMessage();
        }
        String argument = unmatched.getUnmatched().getFirst();
        List<String> suggestions = unmatched.getSuggestions();
        if (unmatched.isUnknownOption()) {
            // Picocli suggests the options that start as this one does.
            return "unknown option '" + argument + "'"
                    + (suggestions.isEmpty() ? "" : "; did you mean '" + suggestions.getFirst() + "'?");
        }
        if (!e.getCommandLine().getSubcommands().isEmpty()) {
            // Picocli ranks every subcommand, however unlike: suggest only a near one, a typo away.
            boolean near = !suggestions.isEmpty() && distance(argument, suggestions.getFirst()) <= MAX_TYPOS;
            return "unknown subcommand '" + argument + "'"
                    + (near ? "; did you mean '" + suggestions.getFirst() + "'?" : "");
        }
        return e.getMessage();
    }

    /** Levenshtein distance between {@code a} and {@code b}: single-character inserts, deletes and changes. */
    static int distance(String a, String b) {
        int[] previous = new int[b.length() + 1];
        int[] current = new int[b.length() + 1];
        for (int j = 0; j <= b.length(); j++) {
            previous[j] = j;
        }
        for (int i = 1; i <= a.length(); i++) {
            current[0] = i;
            for (int j = 1; j <= b.length(); j++) {
                int change = previous[j - 1] + (a.charAt(i - 1) == b.charAt(j - 1) ? 0 : 1);
                current[j] = Math.min(change, Math.min(previous[j], current[j - 1]) + 1);
            }
            int[] swap = previous;
            previous = current;
            current = swap;
        }
        return previous[b.length()];
    }
}
