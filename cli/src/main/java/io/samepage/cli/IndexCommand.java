package io.samepage.cli;

import picocli.CommandLine;
import picocli.CommandLine.Command;

/**
 * {@code samepage index}: the pre-load image index (ARCHITECTURE.md, "Pre-load image index") as files
 * an operator builds once per image, inspects, and checks against the image.
 */
@Command(
        name = "index",
        mixinStandardHelpOptions = true,
        subcommands = {IndexBuildCommand.class, IndexInspectCommand.class, IndexVerifyCommand.class},
        description = {
            "Builds, inspects and verifies pre-load image indexes. An index lists, for each 4 KiB block "
                    + "of an image (a raw disk image or any file, or a directory tree), its SHA-256 digest, a fast hash "
                    + "and whether it is all zeros, bound to the image's identity (laid-out size, newest modification "
                    + "time, files, each file's change time and inode). A guest that loads a block whose content is "
                    + "already resident maps it copy-on-write instead of reading it ('samepage demo' shows it).",
            "",
        },
        footer = {
            "",
            "Exit codes: 0 success; 1 failure while working or a check that failed; 2 bad usage or bad input.",
        })
final class IndexCommand implements Runnable {

    @CommandLine.Spec
    private CommandLine.Model.CommandSpec spec;

    /** With no subcommand there is nothing to do: show the usage and exit 2. */
    @Override
    public void run() {
        throw new CommandLine.ParameterException(spec.commandLine(), "missing subcommand: build, inspect or verify");
    }
}
