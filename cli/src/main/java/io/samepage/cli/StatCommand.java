package io.samepage.cli;

import com.fasterxml.jackson.databind.node.ObjectNode;
import io.samepage.daemon.CountersFile;
import io.samepage.daemon.CountersFileReader;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.time.Instant;
import java.util.Locale;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/**
 * {@code samepage stat}: prints a daemon's counters from its counters file, from another process, like
 * AeronStat: the daemon's pid, whether it is running or closed, the age of its last heartbeat, and
 * every counter under KSM's names.
 */
@Command(
        name = "stat",
        sortOptions = false,
        description = {
            "Prints the counters of a samepage daemon from its counters file, without disturbing it: the "
                    + "daemon's pid, its state (running; closed once it stopped; stale if the file says running "
                    + "but the process is gone), the age of its last heartbeat (updated at least every 250 ms "
                    + "while it runs), and every counter under Linux KSM's names.",
            "",
        },
        footer = {
            "",
            "Exit codes: 0 success; 2 a counters file that is missing, not a regular file, unreadable, truncated, "
                    + "foreign or of another layout version (one written by an older samepage daemon included), "
                    + "with one line on stderr.",
        })
final class StatCommand implements Callable<Integer> {

    @CommandLine.Spec
    private CommandLine.Model.CommandSpec spec;

    @Mixin
    private HelpOption help;

    @Option(names = "--json", description = "Print one JSON object with the counters' exact names.")
    private boolean json;

    @Option(names = "--counters-file", paramLabel = "FILE",
            description = "The daemon's counters file. Default: /run/samepage/counters, or "
                    + "java.io.tmpdir/samepage/counters where /run is not writable (where the daemon puts it).")
    private Path countersFile;

    @Override
    public Integer call() {
        PrintWriter out = spec.commandLine().getOut();
        Path path = countersFile != null ? countersFile : CountersFile.defaultPath();
        InputFiles.refuseIfNotRegular(path);
        CountersFileReader.Snapshot s = CountersFileReader.read(path);
        long ageMillis = Math.max(0, System.currentTimeMillis() - s.heartbeatMillis());
        String state = !s.running() ? "closed" : ProcessHandle.of(s.pid()).isPresent() ? "running" : "stale";
        if (json) {
            ObjectNode root = CounterReport.newObject();
            root.put("counters_file", path.toString());
            root.put("pid", s.pid());
            root.put("state", state);
            root.put("start_time", Instant.ofEpochMilli(s.startMillis()).toString());
            root.put("heartbeat_age_millis", ageMillis);
            for (int id = 0; id < CountersFile.COUNTER_NAMES.size(); id++) {
                root.put(CountersFile.COUNTER_NAMES.get(id), s.values()[id]);
            }
            out.print(CounterReport.render(root));
        } else {
            out.printf(Locale.ROOT, "samepage daemon pid %d: %s, started %s, last heartbeat %.1f s ago (%s)%n",
                    s.pid(), state, Instant.ofEpochMilli(s.startMillis()), ageMillis / 1000.0, path);
            for (int id = 0; id < CountersFile.COUNTER_NAMES.size(); id++) {
                out.printf(Locale.ROOT, "%-20s %d%n", CountersFile.COUNTER_NAMES.get(id), s.values()[id]);
            }
        }
        out.flush();
        return 0;
    }
}
