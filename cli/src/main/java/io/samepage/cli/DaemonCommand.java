package io.samepage.cli;

import io.samepage.daemon.Daemon;
import io.samepage.daemon.DaemonConfig;
import io.samepage.daemon.DaemonService;
import io.samepage.daemon.OneLine;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import java.util.function.Consumer;
import org.agrona.concurrent.ShutdownSignalBarrier;
import sun.misc.Signal;
import sun.misc.SignalHandler;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/**
 * {@code samepage daemon}: reads a config file into a {@link Daemon.Context}, launches the {@link Daemon}
 * and waits on a {@link ShutdownSignalBarrier} until SIGTERM or SIGINT (one during the launch stops it) or
 * a daemon thread's Error (exit 1), then closes it; SIGHUP reloads the config and systemd hears of each
 * step ({@link DaemonService}). SIGHUP is caught with {@code sun.misc.Signal} ({@code jdk.unsupported}):
 * Java has no supported API for a signal that must not stop the JVM, whose own handler treats SIGHUP as
 * SIGTERM. The daemon itself is the daemon module's.
 */
@Command(
        name = "daemon",
        sortOptions = false,
        description = {
            "Runs the merge engine as a daemon over the sources of a config file: merges with Linux KSM's rules at "
                    + "the configured pace, publishes the counters in a memory-mapped counters file (read it with "
                    + "'samepage stat') and, if metrics_port is set, on http://METRICS_ADDRESS:PORT/metrics "
                    + "(127.0.0.1 unless metrics_address says). Stops cleanly on SIGTERM or SIGINT (exit 0). SIGHUP "
                    + "reloads the config: knobs and estimate_interval_seconds live; a bad config or a change that "
                    + "needs a restart is refused on one line. Tells systemd (Type=notify) READY, RELOADING, STOPPING.",
            "",
            "Config: key=value lines, '#' comment lines, blank lines ignored. The KSM knobs (pages_to_scan, "
                    + "sleep_millisecs, run, max_page_sharing, use_zero_pages, smart_scan, advisor_mode, "
                    + "advisor_max_cpu, advisor_target_scan_time, advisor_min_pages_to_scan, "
                    + "advisor_max_pages_to_scan) with KSM's rules; source (repeatable: a file, pid:PID, or qemu "
                    + "for every QEMU guest: live sources are estimated, not merged); domain_per_source (0/1); "
                    + "pool_mib (default: the files' size); metrics_port (0, the default, serves none; any binds a "
                    + "free port, which the start line names); metrics_address (an IP address, default 127.0.0.1); "
                    + "counters_file (default /run/samepage/counters, or java.io.tmpdir/samepage/counters where /run "
                    + "is not writable; only the default's directory is created); estimate_interval_seconds (default 60). "
                    + "cli/src/dist/samepage.conf documents every key.",
            "",
        },
        footer = {
            "",
            "Exit codes: 0 stopped by SIGTERM or SIGINT; 1 failure while working (such as a daemon thread that "
                    + "stopped on an error); 2 a config the daemon cannot run ('samepage daemon: FILE:LINE: what is "
                    + "wrong', sources that do not fit pool_mib), a bad source, a port in use, a counters file it "
                    + "may not use; nothing is started then.",
        })
final class DaemonCommand implements Callable<Integer> {

    @CommandLine.Spec
    private CommandLine.Model.CommandSpec spec;

    @Mixin
    private HelpOption help;

    @Option(names = "--config", paramLabel = "FILE", required = true, description = "The config file.")
    private Path configFile;

    @Override
    public Integer call() {
        PrintWriter out = spec.commandLine().getOut();
        PrintWriter err = spec.commandLine().getErr();
        InputFiles.refuseIfNotRegular(configFile);
        Consumer<String> notices = line -> {
            err.println("samepage daemon: " + OneLine.of(line));
            err.flush();
        };
        Daemon.Context context = DaemonConfig.read(configFile).applyTo(new Daemon.Context().noticeHandler(notices));
        DaemonService service = new DaemonService(configFile, notices);
        // Before launch, or the JVM's own SIGHUP handler shuts it down. One ignored since start (nohup) stays so.
        if (Signal.handle(new Signal("HUP"), _ -> service.reload()) == SignalHandler.SIG_IGN) {
            notices.accept("SIGHUP is ignored in this process (started under nohup?), so it cannot reload the "
                    + "config; restart the daemon to change it");
        }
        // SIGTERM or SIGINT during a long launch interrupts it (the service closes what it opened; null).
        ShutdownSignalBarrier stop = new ShutdownSignalBarrier(service::stop);
        service.endOnFatalError(context, stop::signal);     // a daemon thread's Error ends the wait too: exit 1
        boolean signalled = false;
        try {
            try (Daemon daemon = service.launch(context)) {
                if (daemon != null) {
                    out.println("samepage daemon: pid " + ProcessHandle.current().pid() + ", "   // flushed: autoflush
                            + daemon.engine().guests().size() + " guests, counters file " + daemon.countersFile()
                            + (daemon.metricsUrl() != null ? ", metrics " + daemon.metricsUrl() : ""));
                    service.ready(daemon);
                    stop.await();
                }
                service.throwIfFailed();
                signalled = true;
                service.stopping();
            }
        } catch (RuntimeException | Error e) {
            if (!signalled) {
                stop.close();       // an Error too: left open, its shutdown hook kept the JVM from exiting
                throw e;
            }
            halt(new ErrorHandler().handleExecutionException(e instanceof RuntimeException r ? r
                    : new CommandLine.ExecutionException(spec.commandLine(), e.toString(), e), spec.commandLine(), null));
        }
        halt(0);
        return 0;
    }

    /**
     * Ends the JVM with {@code exitCode} once the daemon has closed after SIGTERM or SIGINT. The JVM is shutting
     * down then (the barrier's shutdown hook ended the wait): it would exit 128 + the signal whatever this
     * returns, as System.exit blocks while shutdown hooks run. A daemon asked to stop exits 0, as --help and
     * the systemd unit say (or the code of a close that failed): halt is the one way left to give that code.
     */
    private void halt(int exitCode) {
        spec.commandLine().getOut().flush();
        spec.commandLine().getErr().flush();
        System.out.flush();
        Runtime.getRuntime().halt(exitCode);
    }
}
