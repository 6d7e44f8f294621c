package io.samepage.cli;

import io.samepage.host.KernelKsm;
import io.samepage.host.KernelKsmException;
import io.samepage.host.KnobChange;
import io.samepage.host.KsmKnob;
import java.io.PrintWriter;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Parameters;

/**
 * {@code samepage ksm set KNOB=VALUE...}: writes kernel KSM knobs through {@link KernelKsm#set}, which
 * checks every pair before it writes any and writes them in a safe order. The help's knob list comes
 * from {@link KsmKnob}, so it cannot drift from the rules that are enforced.
 */
@Command(
        name = "set",
        sortOptions = false,
        description = {
            "Writes knobs of the host's kernel KSM, as root. Every KNOB=VALUE is checked first with KSM's own "
                    + "rules (mm/ksm.c): a known knob, a decimal value in its range, and the rules that depend "
                    + "on KSM's state. If any pair is refused, nothing is written. Then the pairs are written "
                    + "in a safe order, whatever order they were given in: run=0 or run=2 first; then "
                    + "max_page_sharing and merge_across_nodes (they need pages_shared = 0, which run=2 gives); "
                    + "then the advisor's bounds; then advisor_mode (switching it resets pages_to_scan); then "
                    + "the other knobs; run=1 last.",
            "",
            "Prints one line per knob, 'name: old -> new', as the kernel shows them after the write.",
            "",
        })
final class KsmSetCommand implements Callable<Integer> {

    private CommandLine.Model.CommandSpec spec;

    @Mixin
    private HelpOption help;

    @Mixin
    private KsmCommand.Directory directory;

    @Parameters(paramLabel = "KNOB=VALUE", arity = "1..*",
            description = "A knob's sysfs name and its new value, such as sleep_millisecs=50; each knob once.")
    private List<String> pairs;

    /** Takes the spec picocli builds, and adds the knob list to its help. */
    @CommandLine.Spec
    void spec(CommandLine.Model.CommandSpec commandSpec) {
        this.spec = commandSpec;
        commandSpec.usageMessage().footer(footer());
    }

    @Override
    public Integer call() {
        PrintWriter out = spec.commandLine().getOut();
        Map<String, String> assignments = parse(pairs);
        List<KnobChange> changes;
        try {
            changes = new KernelKsm(directory.checked(), KernelKsm.PROC_DIRECTORY).set(assignments);
        } catch (KernelKsmException e) {
            print(out, e.written());
            if (e.kind() == KernelKsmException.Kind.INVALID) {
                throw CommandException.badInput(e.getMessage() + "; nothing was written");
            }
            throw KsmCommand.toCommandException(e);
        }
        print(out, changes);
        return 0;
    }

    /** The pairs by knob name, in the order given; a malformed or repeated pair is bad input. */
    static Map<String, String> parse(List<String> pairs) {
        Map<String, String> assignments = new LinkedHashMap<>();
        for (String pair : pairs) {
            int equals = pair.indexOf('=');
            if (equals <= 0) {
                throw CommandException.badInput(pair + ": expected KNOB=VALUE, such as sleep_millisecs=50; "
                        + "nothing was written");
            }
            String knob = pair.substring(0, equals);
            String previous = assignments.putIfAbsent(knob, pair.substring(equals + 1));
            if (previous != null) {
                throw CommandException.badInput(pair + ": " + knob + " is given twice (also " + knob + "=" + previous
                        + "); nothing was written");
            }
        }
        return assignments;
    }

    private static void print(PrintWriter out, List<KnobChange> changes) {
        for (KnobChange change : changes) {
            out.println(change);
        }
        out.flush();
    }

    private static String[] footer() {
        List<String> lines = new ArrayList<>();
        lines.add("");
        lines.add("Knobs (the value after boot in brackets):");
        for (KsmKnob knob : KsmKnob.values()) {
            lines.add("  " + knob.sysfsName() + ": " + knob.help() + " [" + knob.bootDefault() + "].");
        }
        lines.add("");
        lines.add("Samepage takes values as the kernel prints them (decimal digits, 0 or 1, none or scan-time); "
                + "the counters (pages_shared, ...) are the kernel's and cannot be set.");
        lines.add("");
        lines.add("Exit codes: 0 every pair written; 1 failure while working (no KSM in this kernel, knobs not "
                + "writable: not root or a read-only sysfs, or the kernel refused a write: the knobs written "
                + "before it are printed); 2 bad usage or bad input (a malformed or repeated pair, an unknown "
                + "knob, a counter, a value out of range, a change KSM's state forbids), with one line on stderr "
                + "naming the pair, and nothing written.");
        return lines.stream().map(line -> line.replace("%", "%%")).toArray(String[]::new);
    }
}
