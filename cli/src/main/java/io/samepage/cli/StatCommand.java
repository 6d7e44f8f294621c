package io.samepage.cli;

import com.fasterxml.jackson.databind.node.ObjectNode;
import io.samepage.daemon.CountersFile;
import io.samepage.daemon.CountersFileReader;
import io.samepage.daemon.DaemonException;
import io.samepage.daemon.OneLine;
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
 * {@code samepage stat}: a daemon's counters from its counters file, from another process, like AeronStat
 * (and, with {@code --follow}, refreshed like it): its pid, its state
 * ({@link CountersFileReader.Snapshot#state}), its heartbeat's age, and every counter under KSM's names.
 */
@Command(
        name = "stat",
        sortOptions = false,
        description = {
            "Prints the counters of a samepage daemon from its counters file, without disturbing it: the "
                    + "daemon's pid, its state (running; closed once it stopped; stale if its heartbeat, beating "
                    + "at least every 250 ms, is over 10 s old: killed or hung), the heartbeat's age, and every "
                    + "counter under Linux KSM's names. --follow prints them again every --interval seconds "
                    + "until interrupted, reading the file anew, so it follows a restarted daemon.",
            "",
        },
        footer = {
            "",
            "Exit codes: 0 success; 2 a counters file that is missing, not a regular file, unreadable, truncated, "
                    + "foreign or of another layout version (one written by an older samepage daemon included), "
                    + "with one line on stderr (while following, after the first report, following goes on).",
        })
final class StatCommand implements Callable<Integer> {

    /** The shortest --interval, seconds: ten reports a second at most. */
    static final double MIN_INTERVAL_SECONDS = 0.1;

    @CommandLine.Spec
    private CommandLine.Model.CommandSpec spec;

    @Mixin
    private HelpOption help;

    @Option(names = "--json", description = "Print one JSON object with the counters' exact names (with --follow: "
            + "one object per line).")
    private boolean json;

    @Option(names = "--counters-file", paramLabel = "FILE",
            description = "The daemon's counters file. Default: /run/samepage/counters, or "
                    + "java.io.tmpdir/samepage/counters where /run is not writable (where the daemon puts it).")
    private Path countersFile;

    @Option(names = "--follow", description = "Print the counters again every --interval seconds until interrupted.")
    private boolean follow;

    @Option(names = "--interval", paramLabel = "SECONDS", defaultValue = "1",
            description = "Seconds between two reports with --follow, at least 0.1. Default: ${DEFAULT-VALUE}.")
    private double intervalSeconds;

    @Option(names = "--count", paramLabel = "N",
            description = "With --follow, stop after N reports (exit 0). Default: until interrupted.")
    private Long count;

    @Override
    public Integer call() throws InterruptedException {
        if (!(intervalSeconds >= MIN_INTERVAL_SECONDS)) {
            throw new CommandLine.ParameterException(spec.commandLine(),
                    "--interval must be at least " + MIN_INTERVAL_SECONDS + " seconds, not " + intervalSeconds);
        }
        if (count != null && (!follow || count < 1)) {
            throw new CommandLine.ParameterException(spec.commandLine(),
                    count < 1 ? "--count must be at least 1, not " + count : "--count needs --follow");
        }
        PrintWriter out = spec.commandLine().getOut();
        Path path = countersFile != null ? countersFile : CountersFile.defaultPath();
        report(out, path);
        long intervalNanos = (long) (intervalSeconds * 1e9);
        // Ends at a report it could not write (a closed pipe, a full disk): Execution then reports it, exit 1.
        for (long reports = 1; follow && (count == null || reports < count) && !out.checkError(); reports++) {
            Thread.sleep(intervalNanos / 1_000_000, (int) (intervalNanos % 1_000_000));
            try {
                report(out, path);
            } catch (DaemonException | CommandException e) {
                PrintWriter err = spec.commandLine().getErr();
                err.println("samepage stat: " + OneLine.of(e.getMessage()));
                err.flush();
            }
        }
        return 0;
    }

    /** Reads the file once and prints what it holds. */
    private void report(PrintWriter out, Path path) {
        InputFiles.refuseIfNotRegular(path);
        CountersFileReader.Snapshot s = CountersFileReader.read(path);
        long now = System.currentTimeMillis();
        long ageMillis = Math.max(0, now - s.heartbeatMillis());
        String state = s.state(now);
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
            out.print(follow ? root + System.lineSeparator() : CounterReport.render(root));
        } else {
            if (follow) {
                out.println();
            }
            out.printf(Locale.ROOT, "samepage daemon pid %d: %s, started %s, last heartbeat %.1f s ago (%s)%n",
                    s.pid(), state, Instant.ofEpochMilli(s.startMillis()), ageMillis / 1000.0, path);
            for (int id = 0; id < CountersFile.COUNTER_NAMES.size(); id++) {
                out.printf(Locale.ROOT, "%-22s %d%n", CountersFile.COUNTER_NAMES.get(id), s.values()[id]);
            }
        }
        out.flush();
    }
}
