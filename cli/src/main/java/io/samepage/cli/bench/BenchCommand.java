package io.samepage.cli.bench;

import picocli.CommandLine;
import picocli.CommandLine.Command;

/** {@code samepage bench}: Samepage's measurements that the README quotes; {@code density} and {@code wasm}. */
@Command(
        name = "bench",
        mixinStandardHelpOptions = true,
        subcommands = {DensityCommand.class, WasmCommand.class},
        description = "Measures Samepage against its references (kernel KSM, containers) and writes reports.",
        footer = {
            "",
            "Exit codes: 0 success, 1 failure while working, 2 bad usage or bad input.",
        })
public final class BenchCommand implements Runnable {

    @CommandLine.Spec
    private CommandLine.Model.CommandSpec spec;

    /** With no subcommand there is nothing to do: show the usage and exit 2. */
    @Override
    public void run() {
        throw new CommandLine.ParameterException(spec.commandLine(), "missing subcommand: density or wasm");
    }
}
