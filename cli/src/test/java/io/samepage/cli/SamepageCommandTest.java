package io.samepage.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.List;
import org.junit.jupiter.api.Test;
import picocli.CommandLine;

/** {@link SamepageCommand#newCommandLine(String...)} builds one subcommand when the arguments name it. */
class SamepageCommandTest {

    private static final List<String> ALL = List.of("scan", "similar", "index", "demo", "ksm", "daemon", "stat",
            "bench", "kvm");

    @Test
    void withoutASubcommandEveryOneIsBuiltInTheUsagesOrder() {
        assertEquals(ALL, List.copyOf(SamepageCommand.newCommandLine().getSubcommands().keySet()));
        assertEquals(ALL, List.copyOf(SamepageCommand.newCommandLine("--help").getSubcommands().keySet()));
        assertEquals(ALL, List.copyOf(SamepageCommand.newCommandLine("scna", "x").getSubcommands().keySet()));
    }

    @Test
    void aNamedSubcommandIsBuiltAloneAndHelpsAndExitsAsWithAllOfThem() {
        for (String name : ALL) {
            CommandLine alone = SamepageCommand.newCommandLine(name, "--help");
            assertEquals(List.of(name), List.copyOf(alone.getSubcommands().keySet()));
            CliRun lazy = CliRun.of(alone, name, "--help");
            CliRun full = CliRun.of(SamepageCommand.newCommandLine(), name, "--help");
            assertEquals(full, lazy, name);
            assertEquals(CliRun.of(SamepageCommand.newCommandLine(), name, "--frobnicate"),
                    CliRun.of(name, "--frobnicate"), name);
        }
    }
}
