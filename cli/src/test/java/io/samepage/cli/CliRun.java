package io.samepage.cli;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.io.Writer;
import picocli.CommandLine;

/** Runs the {@code samepage} command in this JVM and captures what it printed. */
record CliRun(int exitCode, String stdout, String stderr) {

    static CliRun of(String... args) {
        return of(SamepageCommand.newCommandLine(args), args);
    }

    /** Runs {@code commandLine} (built with Samepage's handlers), capturing stdout and stderr. */
    static CliRun of(CommandLine commandLine, String... args) {
        StringWriter out = new StringWriter();
        CliRun run = writingTo(commandLine, out, args);
        return new CliRun(run.exitCode(), out.toString(), run.stderr());
    }

    /** Runs {@code commandLine} with its stdout going to {@code out}; {@link #stdout} is empty. */
    static CliRun writingTo(CommandLine commandLine, Writer out, String... args) {
        StringWriter err = new StringWriter();
        commandLine.setOut(new PrintWriter(out, true));
        commandLine.setErr(new PrintWriter(err, true));
        int exitCode = commandLine.execute(args);
        return new CliRun(exitCode, "", err.toString());
    }
}
