package io.samepage.cli;

import picocli.CommandLine.Option;

/**
 * The option every command that does work shares, defined once and mixed in
 * ({@code @Mixin HelpOption help}): {@code -h}/{@code --help}, which prints the command's help and exits 0.
 * Commands that only group others get it with {@code --version} from picocli's standard mixin.
 */
public final class HelpOption {

    @Option(names = {"-h", "--help"}, usageHelp = true, description = "Show this help and exit.")
    boolean help;
}
