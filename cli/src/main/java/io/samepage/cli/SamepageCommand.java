package io.samepage.cli;

import io.samepage.cli.bench.BenchCommand;
import io.samepage.cli.kvm.KvmCommand;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.util.List;
import java.util.Properties;
import picocli.CommandLine;
import picocli.CommandLine.Command;

/**
 * The top-level {@code samepage} command. Subcommands arrive with the capabilities behind them
 * ({@code scan}, {@code index}, {@code demo} so far); this class wires picocli, and defines every exit
 * code of the CLI: the {@code EXIT_} constants below, which {@link ErrorHandler} and the subcommands
 * return and each {@code --help} documents. The launcher script adds 3 (no JDK 25 found).
 */
@Command(
        name = "samepage",
        mixinStandardHelpOptions = true,
        versionProvider = SamepageCommand.Version.class,
        description = {
            "Deduplicates identical 4 KiB memory pages across virtual machines and other",
            "guests, and maps blocks of an image that are already resident instead of",
            "reading them.",
        },
        footer = {
            "",
            "Exit codes: 0 success; 1 failure while working, a check that failed, or output that cannot",
            "be written; 2 bad usage or bad input; " + SamepageCommand.EXIT_INTERNAL + " internal error (out of "
                    + "memory, a bug); some",
            "subcommands add their own (see their --help). An error is one line on stderr (usage: two).",
        })
public final class SamepageCommand implements Runnable {

    /** Exit code for a failure while working: a read error, an exhausted frame pool, a failed check. */
    public static final int EXIT_FAILURE = 1;

    /** Exit code for bad usage or bad input: an unknown option, a missing or malformed source. */
    public static final int EXIT_USAGE = 2;

    /** Exit code of {@code kvm selftest}: KVM cannot create a VM here, so nothing was run. */
    public static final int EXIT_NO_KVM = 4;

    /** Exit code of {@code kvm selftest}: some guest's memory or output held a byte other than the one it must. */
    public static final int EXIT_WRONG_BYTE = 5;

    /**
     * Exit code for an internal error: the JVM ran out of memory, or an exception no subcommand expects
     * (a bug). 70 is {@code EX_SOFTWARE} of BSD's sysexits.h, far from the small codes subcommands use.
     */
    public static final int EXIT_INTERNAL = 70;

    @CommandLine.Spec
    private CommandLine.Model.CommandSpec spec;

    /** The subcommands, in the order the usage lists them. */
    private static final List<Class<?>> SUBCOMMANDS = List.of(ScanCommand.class, SimilarCommand.class,
            IndexCommand.class, DemoCommand.class, KsmCommand.class, DaemonCommand.class, StatCommand.class,
            BenchCommand.class, KvmCommand.class);

    /**
     * Builds the command line with Samepage's error handling, writing to this process's stdout and
     * stderr. When {@code args} starts with a subcommand's name, only that one is built: picocli's
     * reflective model of all nine took 0.7 CPU-seconds of a one-shot JVM (docs/perf/estimator.md).
     */
    public static CommandLine newCommandLine(String... args) {
        CommandLine commandLine = new CommandLine(new SamepageCommand());
        String first = args.length == 0 ? "" : args[0];
        boolean named = SUBCOMMANDS.stream().anyMatch(c -> first.equals(nameOf(c)));
        for (Class<?> command : SUBCOMMANDS) {
            if (!named || first.equals(nameOf(command))) {
                commandLine.addSubcommand(command);
            }
        }
        return configure(commandLine).setOut(new Execution.Stdout());     // keeping the reason a write failed
    }

    /**
     * Installs on {@code commandLine} the one way the CLI reports errors: {@link ErrorHandler} for parse
     * errors and for whatever a subcommand throws, and {@link Execution} around every run.
     */
    private static CommandLine configure(CommandLine commandLine) {
        ErrorHandler handler = new ErrorHandler();
        return commandLine.setParameterExceptionHandler(handler)
                .setExecutionExceptionHandler(handler)
                .setExecutionStrategy(new Execution());
    }

    private static String nameOf(Class<?> command) {
        return command.getAnnotation(Command.class).name();
    }

    /** With no subcommand there is nothing to do: show the usage and exit 2. */
    @Override
    public void run() {
        throw new CommandLine.ParameterException(spec.commandLine(), "missing subcommand");
    }

    /** The version Maven filtered into {@code version.properties}. */
    static final class Version implements CommandLine.IVersionProvider {
        @Override
        public String[] getVersion() {
            Properties properties = new Properties();
            try (InputStream in = SamepageCommand.class.getResourceAsStream("version.properties")) {
                if (in != null) {
                    properties.load(in);
                }
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
            return new String[] {
                "samepage " + properties.getProperty("version", "unknown"),
                "Java " + Runtime.version() + " (" + System.getProperty("java.vendor") + ")",
            };
        }
    }
}
