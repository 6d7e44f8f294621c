package io.samepage.cli;

import com.fasterxml.jackson.databind.node.ObjectNode;
import io.samepage.host.KernelKsm;
import io.samepage.host.KernelKsmException;
import io.samepage.host.KsmStatus;
import java.math.BigInteger;
import java.util.Locale;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/**
 * {@code samepage ksm status}: every file of {@code /sys/kernel/mm/ksm} under its own name, plus the
 * two figures an operator derives from them. Reads only; needs no root.
 */
@Command(
        name = "status",
        sortOptions = false,
        description = {
            "Prints every knob and counter of the host's kernel KSM under its sysfs file name: the knobs "
                    + "(run, pages_to_scan, sleep_millisecs, ...), then the counters (pages_shared, "
                    + "pages_sharing, ..., general_profit), then any file this Samepage does not know, as the "
                    + "kernel shows it. Pages are 4 KiB; general_profit is in bytes; advisor_mode shows the "
                    + "selected mode.",
            "",
            "Below the table: the memory merging saved, (pages_sharing + ksm_zero_pages) x 4096 bytes, and the "
                    + "sharing ratio, pages_sharing / pages_shared (pages per KSM page).",
            "",
        },
        footer = {
            "",
            "Exit codes: 0 success; 1 failure while working (this kernel has no KSM, a file cannot be read); "
                    + "2 a --ksm-dir that is not KSM's sysfs directory.",
        })
final class KsmStatusCommand implements Callable<Integer> {

    @CommandLine.Spec
    private CommandLine.Model.CommandSpec spec;

    @Mixin
    private HelpOption help;

    @Option(names = "--json", description = "Print one JSON object whose keys are the sysfs file names exactly; "
            + "numbers as numbers, advisor_mode as a string. The derived figures are left out.")
    private boolean json;

    @Mixin
    private KsmCommand.Directory directory;

    @Override
    public Integer call() {
        KsmStatus status;
        try {
            status = new KernelKsm(directory.checked(), KernelKsm.PROC_DIRECTORY).status();
        } catch (KernelKsmException e) {
            throw KsmCommand.toCommandException(e);
        }
        spec.commandLine().getOut().print(json ? CounterReport.render(toJson(status)) : text(status));
        return 0;
    }

    static ObjectNode toJson(KsmStatus status) {
        ObjectNode node = CounterReport.newObject();
        status.values().forEach((name, value) -> putValue(node, name, value));
        return node;
    }

    /** A sysfs value as a JSON number if it is a decimal integer, else as a string. */
    static void putValue(ObjectNode node, String name, String value) {
        if (value.matches("-?[0-9]+")) {
            node.put(name, new BigInteger(value));
        } else {
            node.put(name, value);
        }
    }

    private static String text(KsmStatus status) {
        StringBuilder out = new StringBuilder();
        out.append("Kernel KSM at ").append(status.directory()).append(": ").append(runState(status)).append("\n\n");
        TextTable table = new TextTable("name", "value");
        status.values().forEach(table::row);
        out.append(table.render()).append('\n');
        long saved = status.savedBytes();
        out.append(String.format(Locale.ROOT, "saved: %.2f MiB, %d bytes ((pages_sharing + ksm_zero_pages) x 4096)%n",
                saved / CounterReport.MIB, saved));
        out.append(status.sharingRatio().isPresent()
                ? String.format(Locale.ROOT, "sharing ratio: %.2f pages per KSM page (pages_sharing / pages_shared)%n",
                        status.sharingRatio().getAsDouble())
                : "sharing ratio: none (pages_shared is 0" + (status.number("pages_shared").isEmpty() ? ", or not a number)\n" : ")\n"));
        return out.toString();
    }

    private static String runState(KsmStatus status) {
        return switch (String.valueOf(status.number("run").orElse(-1))) {     // not a number: neither state
            case "0" -> "stopped (run=0)";
            case "1" -> "merging (run=1)";
            case "2" -> "stopped after unmerging (run=2)";
            default -> "run=" + status.value("run").map(v -> "'" + v + "'").orElse("?") + ", not a state KSM has";
        };
    }
}
