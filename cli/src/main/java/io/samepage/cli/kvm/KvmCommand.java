package io.samepage.cli.kvm;

import picocli.CommandLine;
import picocli.CommandLine.Command;

/**
 * {@code samepage kvm}: KVM guests on mapped guest memory under the engine. So far one subcommand,
 * {@code selftest} ({@link SelftestCommand}).
 */
@Command(
        name = "kvm",
        mixinStandardHelpOptions = true,
        subcommands = {SelftestCommand.class},
        description = {
            "Runs KVM guests on mapped guest memory under the engine: 'selftest' merges guests with identical "
                    + "memory, has them write to merged pages and checks every byte.",
            "",
        },
        footer = {
            "",
            "Exit codes: see each subcommand's --help.",
        })
public final class KvmCommand implements Runnable {

    @CommandLine.Spec
    private CommandLine.Model.CommandSpec spec;

    /** With no subcommand there is nothing to do: show the usage and exit 2. */
    @Override
    public void run() {
        throw new CommandLine.ParameterException(spec.commandLine(), "missing subcommand: selftest");
    }
}
