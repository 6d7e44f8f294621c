package io.samepage.cli;

import io.samepage.cli.bench.BenchCommand;
import io.samepage.cli.kvm.KvmCommand;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.util.Properties;
import picocli.CommandLine;
import picocli.CommandLine.Command;

/**
 * The top-level {@code samepage} command. Subcommands arrive with the capabilities behind them
 * ({@code scan}, {@code index}, {@code demo} so far); this class only wires picocli and the exit-code conventions
 * every subcommand follows: 0 success, 1 a failure while working, 2 bad usage or bad input.
 */
@Command(
        name = "samepage",
        mixinStandardHelpOptions = true,
        versionProvider = SamepageCommand.Version.class,
        subcommands = {ScanCommand.class, IndexCommand.class, DemoCommand.class, KsmCommand.class,
            DaemonCommand.class, StatCommand.class, BenchCommand.class, KvmCommand.class},
        description = {
            "Deduplicates identical 4 KiB memory pages across virtual machines and other",
            "guests, and maps blocks of an image that are already resident instead of",
            "reading them.",
        },
        footer = {
            "",
            "Exit codes: 0 success, 1 failure while working or a check that failed, 2 bad usage or bad input;",
            "some subcommands add their own (see their --help).",
        })
public final class SamepageCommand implements Runnable {

    /** Exit code for a failure while working: a read error, an exhausted frame pool, a failed check. */
    public static final int EXIT_FAILURE = 1;

    /** Exit code for bad usage or bad input: an unknown option, a missing or malformed source. */
    public static final int EXIT_USAGE = 2;

    @CommandLine.Spec
    private CommandLine.Model.CommandSpec spec;

    /** Builds the command line with Samepage's exit codes. */
    public static CommandLine newCommandLine() {
        CommandLine commandLine = new CommandLine(new SamepageCommand());
        commandLine.setExitCodeExceptionMapper(
                e -> e instanceof CommandLine.ParameterException ? EXIT_USAGE : EXIT_FAILURE);
        commandLine.setParameterExceptionHandler((e, args) -> {
            CommandLine cmd = e.getCommandLine();
            cmd.getErr().println("samepage: " + e.getMessage());
            cmd.usage(cmd.getErr());
            return EXIT_USAGE;
        });
        return commandLine;
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
