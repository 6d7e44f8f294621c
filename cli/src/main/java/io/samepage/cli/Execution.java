package io.samepage.cli;

import io.samepage.daemon.IoErrors;
import java.io.FileDescriptor;
import java.io.FileOutputStream;
import java.io.FilterOutputStream;
import java.io.IOException;
import java.io.OutputStreamWriter;
import java.io.PrintWriter;
import java.util.List;
import picocli.CommandLine;

/**
 * How every {@code samepage} command line runs, around picocli's {@link CommandLine.RunLast}:
 *
 * <ul>
 *   <li>Arguments left unmatched are an error even beside {@code --help} ({@code samepage nosuchcommand
 *       --help} prints no help and exits 2), since picocli lets help requests through with them.
 *   <li>An empty item of a split list ({@code --pid ,}, {@code --guests 1,}) is bad input: picocli drops a trailing one.
 *   <li>{@link OutOfMemoryError} and {@link StackOverflowError}, which picocli lets escape, go to {@link ErrorHandler}.
 *   <li>Output is flushed once the command is done, and output that could not be written (stdout to a full
 *       device, a closed pipe) fails it: {@link PrintWriter} swallows the write error, so it is checked then.
 * </ul>
 */
final class Execution implements CommandLine.IExecutionStrategy {

    @Override
    public int execute(CommandLine.ParseResult parseResult) {
        CommandLine.ParseResult last = parseResult;
        int exitCode;
        try {
            for (CommandLine.ParseResult level = parseResult; level != null; level = level.subcommand()) {
                if (!level.unmatched().isEmpty()) {
                    throw new CommandLine.UnmatchedArgumentException(level.commandSpec().commandLine(), level.unmatched());
                }
                for (CommandLine.Model.OptionSpec option : level.matchedOptions()) {
                    for (String value : option.splitRegex().isEmpty() ? List.<String>of() : option.originalStringValues()) {
                        if (List.of(value.split(option.splitRegex(), -1)).contains("")) {
                            CommandException empty = CommandException.badInput(option.longestName() + " '" + value
                                    + "': an empty " + option.paramLabel() + " in the list");
                            throw new CommandLine.ExecutionException(level.commandSpec().commandLine(), empty.getMessage(), empty);
                        }
                    }
                }
                last = level;
            }
            exitCode = new CommandLine.RunLast().execute(parseResult);
        } catch (OutOfMemoryError | StackOverflowError e) {     // in the checks above too, not the command alone
            throw new CommandLine.ExecutionException(last.commandSpec().commandLine(), e.toString(), e);
        }
        CommandLine top = parseResult.commandSpec().commandLine();
        if (top.getOut().checkError()) {
            top.getErr().println(top.getCommandSpec().qualifiedName() + ": cannot write the output: "
                    + Stdout.failureOf(top.getOut()));
            top.getErr().flush();
            return exitCode == 0 ? SamepageCommand.EXIT_FAILURE : exitCode;
        }
        return exitCode;
    }

    /** Stdout as a {@link PrintWriter} that remembers the first write error, for the one line that reports it. */
    static final class Stdout extends PrintWriter {

        private final Recording stream;

        Stdout() {
            Recording recording = new Recording();
            super(new OutputStreamWriter(recording, System.out.charset()), true);
            this.stream = recording;
        }

        /** Why {@code out} could not be written, in the system's words where known. */
        static String failureOf(PrintWriter out) {
            return out instanceof Stdout stdout && stdout.stream.failure != null
                    ? IoErrors.reason(stdout.stream.failure) : "write error";
        }
    }

    /** File descriptor 1, unbuffered here (the writer buffers), recording the first failed write. */
    private static final class Recording extends FilterOutputStream {

        private IOException failure;

        Recording() {
            super(new FileOutputStream(FileDescriptor.out));
        }

        @Override
        public void write(byte[] bytes, int offset, int length) throws IOException {
            try {
                out.write(bytes, offset, length);
            } catch (IOException e) {
                failure = failure != null ? failure : e;
                throw e;
            }
        }

        @Override
        public void write(int b) throws IOException {
            write(new byte[] {(byte) b}, 0, 1);
        }
    }
}
