package io.samepage.cli;

import io.samepage.host.KernelKsm;
import io.samepage.host.KernelKsmException;
import java.nio.file.Files;
import java.nio.file.Path;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * {@code samepage ksm}: the host's kernel KSM ({@code /sys/kernel/mm/ksm}) under KSM's own names, read
 * ({@code status}), written with KSM's validation ({@code set}) and tuned by a ksmtuned-style policy
 * ({@code tune}). The work is {@link KernelKsm}'s and {@link io.samepage.host.KsmTuner}'s; these commands
 * parse, print and map {@link KernelKsmException}'s kinds to exit codes.
 */
@Command(
        name = "ksm",
        mixinStandardHelpOptions = true,
        subcommands = {KsmStatusCommand.class, KsmSetCommand.class, KsmTuneCommand.class},
        description = {
            "Reads, sets and tunes the host's kernel KSM (/sys/kernel/mm/ksm) under its own names: 'status' "
                    + "prints every knob and counter, 'set' writes knobs with KSM's own validation, 'tune' "
                    + "decides whether ksmd should merge and how fast, ksmtuned-style.",
            "",
        },
        footer = {
            "",
            "Exit codes: 0 success; 1 failure while working (no KSM in this kernel, knobs not writable, a "
                    + "write the kernel refused); 2 bad usage or bad input (an unknown knob, a value KSM refuses, "
                    + "a --ksm-dir that is not KSM's).",
        })
final class KsmCommand implements Runnable {

    @CommandLine.Spec
    private CommandLine.Model.CommandSpec spec;

    /** With no subcommand there is nothing to do: show the usage and exit 2. */
    @Override
    public void run() {
        throw new CommandLine.ParameterException(spec.commandLine(), "missing subcommand: status, set or tune");
    }

    /** A refused knob or value is bad input (2); anything else is a failure while working (1). */
    static CommandException toCommandException(KernelKsmException e) {
        return e.kind() == KernelKsmException.Kind.INVALID ? CommandException.badInput(e.getMessage())
                : CommandException.failure(e.getMessage());
    }

    /** {@code --ksm-dir}, shared by the subcommands. */
    static final class Directory {

        @Option(names = "--ksm-dir", paramLabel = "DIR",
                description = "KSM's sysfs directory, for a host's sysfs mounted elsewhere (a container's "
                        + "view of the host). Default: /sys/kernel/mm/ksm.")
        Path ksmDirectory = KernelKsm.SYSFS_DIRECTORY;

        /**
         * The directory, refused if it was given and is not a directory, or not KSM's (no {@code run}
         * file). A missing one is KernelKsm's to report: no KSM, as a container's view of such a host.
         *
         * @throws CommandException (exit 2) naming the directory
         */
        Path checked() {
            if (ksmDirectory.equals(KernelKsm.SYSFS_DIRECTORY) || !Files.exists(ksmDirectory)) {
                return ksmDirectory;
            }
            if (!Files.isDirectory(ksmDirectory)) {
                throw CommandException.badInput("--ksm-dir " + ksmDirectory + ": not a directory");
            }
            if (!Files.exists(ksmDirectory.resolve("run"))) {
                throw CommandException.badInput(ksmDirectory + ": not a KSM sysfs directory (it has no 'run' file)");
            }
            return ksmDirectory;
        }
    }
}
