package io.samepage.cli;

import io.samepage.core.DedupEngine;
import io.samepage.core.DedupException;
import io.samepage.core.EngineContext;
import io.samepage.core.Guest;
import io.samepage.core.MergeDomain;
import io.samepage.daemon.CountersFile;
import io.samepage.daemon.DaemonConfig;
import io.samepage.daemon.DaemonException;
import io.samepage.daemon.DaemonMetrics;
import io.samepage.daemon.MetricsServer;
import io.samepage.daemon.PoolSize;
import io.samepage.daemon.ProcessSource;
import io.samepage.daemon.ProcessSources;
import io.samepage.daemon.SourceFile;
import io.samepage.host.KernelKsm;
import java.io.PrintWriter;
import java.lang.foreign.Arena;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.agrona.concurrent.AgentRunner;
import org.agrona.concurrent.SleepingMillisIdleStrategy;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * {@code samepage daemon}: a long-running engine over the configured sources, like ksmd over a host's
 * guests. It loads every source once (files as {@code scan} does; live sources read through
 * {@code ProcessMemory}, rebuilt from a fresh read every {@code estimate_interval_seconds}), runs the
 * engine's {@code Scanner} on an Agrona {@link AgentRunner} paced by {@code sleep_millisecs}, and
 * publishes the counters to the counters file ({@link CountersFile}, read by {@code samepage stat}) at
 * least every {@link #PUBLISH_MILLIS} ms and on {@code /metrics} ({@link DaemonMetrics}).
 *
 * <p>SIGTERM or SIGINT stops it through a shutdown hook: the scanner stops, the counters file is
 * marked closed, the HTTP server stops, and the process exits 0.
 */
@Command(
        name = "daemon",
        sortOptions = false,
        description = {
            "Runs the merge engine as a daemon over the sources of a config file: merges with Linux KSM's "
                    + "rules at the configured pace, publishes the counters in a memory-mapped counters file "
                    + "(read it with 'samepage stat') and, if metrics_port is set, on "
                    + "http://127.0.0.1:PORT/metrics. Stops cleanly on SIGTERM or SIGINT (exit 0).",
            "",
            "Config: key=value lines, '#' comment lines, blank lines ignored. The KSM knobs (pages_to_scan, "
                    + "sleep_millisecs, run, max_page_sharing, use_zero_pages, smart_scan, advisor_mode, "
                    + "advisor_max_cpu, advisor_target_scan_time, advisor_min_pages_to_scan, "
                    + "advisor_max_pages_to_scan) with KSM's rules; source (repeatable: a file, pid:PID, or qemu "
                    + "for every QEMU guest); domain_per_source (0/1); pool_mib (default: the sources' size, "
                    + "live sources' resident pages plus 1/8 and 16 MiB); metrics_port (0, the default, serves "
                    + "none); counters_file (default /run/samepage/counters, or java.io.tmpdir/samepage/counters "
                    + "where /run is not writable); estimate_interval_seconds (default 60). cli/src/dist/"
                    + "samepage.conf documents every key.",
            "",
        },
        footer = {
            "",
            "Exit codes: 0 stopped by SIGTERM or SIGINT; 1 failure while working; 2 bad config (one line "
                    + "'samepage daemon: FILE:LINE: what is wrong'), a bad source, a port or counters file that "
                    + "cannot be used; nothing is started then.",
        })
final class DaemonCommand implements Callable<Integer> {

    /** The longest gap between two updates of the counters file. */
    static final long PUBLISH_MILLIS = 250;

    @CommandLine.Spec
    private CommandLine.Model.CommandSpec spec;

    @Option(names = {"-h", "--help"}, usageHelp = true, description = "Show this help and exit.")
    private boolean help;

    @Option(names = "--config", paramLabel = "FILE", required = true, description = "The config file.")
    private Path configFile;

    private final CountDownLatch stopRequested = new CountDownLatch(1);
    private final CountDownLatch stopped = new CountDownLatch(1);
    private final AtomicInteger exitCode = new AtomicInteger(0);
    private final Map<String, MergeDomain> domains = new HashMap<>();
    private final List<Guest> liveGuests = new ArrayList<>();

    @Override
    public Integer call() {
        PrintWriter err = spec.commandLine().getErr();
        InputFiles.refuseIfNotRegular(configFile);
        DaemonConfig config = DaemonConfig.read(configFile);
        List<SourceFile> files = new ArrayList<>();
        for (DaemonConfig.Source source : config.sources()) {
            if (source instanceof DaemonConfig.Source.File file) {
                files.add(SourceFile.check(file.path()));
            }
        }
        List<ProcessSource> processes = openLive(config, err);
        return run(config, files, processes, err);
    }

    private static List<ProcessSource> openLive(DaemonConfig config, PrintWriter err) {
        List<Integer> pids = new ArrayList<>();
        boolean qemu = false;
        for (DaemonConfig.Source source : config.sources()) {
            if (source instanceof DaemonConfig.Source.Pid pid) {
                pids.add(pid.pid());
            } else if (source instanceof DaemonConfig.Source.Qemu) {
                qemu = true;
            }
        }
        return pids.isEmpty() && !qemu ? List.of() : ProcessSources.open(pids, qemu, skipped(err));
    }

    private int run(DaemonConfig config, List<SourceFile> files, List<ProcessSource> processes, PrintWriter err) {
        EngineContext context = context(config, files, processes);
        long startMillis = System.currentTimeMillis();
        try (DedupEngine engine = DedupEngine.create(context); Arena arena = Arena.ofConfined()) {
            SourceFile.ChunkBuffer buffer = SourceFile.ChunkBuffer.allocate(arena);
            for (SourceFile file : files) {
                Guest guest = engine.createGuest(domain(engine, config, file.name()), file.name(), file.bytes());
                file.loadInto(guest, buffer);
            }
            loadLive(engine, config, processes);
            CountersFile counters = CountersFile.create(config.countersFile(), ProcessHandle.current().pid(),
                    startMillis);
            MetricsServer metrics = null;
            AgentRunner runner = null;
            try {
                DaemonMetrics published = new DaemonMetrics(engine, startMillis);
                if (config.metricsPort() != 0) {
                    metrics = MetricsServer.start(config.metricsPort(), published::prometheusText);
                }
                runner = new AgentRunner(new SleepingMillisIdleStrategy(Math.clamp(engine.knobs().sleepMillis(), 1, 20)),
                        e -> err.println("samepage daemon: scanner: " + e), null, engine.scanner());
                AgentRunner.startOnThread(runner);
                installShutdownHook(err);
                PrintWriter out = spec.commandLine().getOut();
                out.println("samepage daemon: pid " + ProcessHandle.current().pid() + ", " + engine.guests().size()
                        + " guests, counters file " + config.countersFile()
                        + (metrics != null ? ", metrics http://127.0.0.1:" + metrics.port() + "/metrics" : ""));
                out.flush();
                serve(engine, config, counters, published, err);
            } finally {
                if (runner != null) {
                    runner.close();
                }
                counters.close();
                if (metrics != null) {
                    metrics.close();
                }
                stopped.countDown();
            }
            return exitCode.get();
        } catch (DedupException e) {
            exitCode.set(SamepageCommand.EXIT_FAILURE);
            throw CommandException.failure(e.getMessage());
        } catch (RuntimeException e) {
            exitCode.set(ErrorHandler.exitCode(e));
            throw e;
        } finally {
            ProcessSources.closeAll(processes);
            stopped.countDown();
        }
    }

    /** Publishes until a stop is requested; re-reads live sources on their interval. */
    private void serve(DedupEngine engine, DaemonConfig config, CountersFile counters, DaemonMetrics published,
            PrintWriter err) {
        long intervalNanos = TimeUnit.SECONDS.toNanos(config.estimateIntervalSeconds());
        long nextRefresh = System.nanoTime() + intervalNanos;
        while (true) {
            counters.update(published.counterValues(), System.currentTimeMillis());
            try {
                if (stopRequested.await(PUBLISH_MILLIS, TimeUnit.MILLISECONDS)) {
                    return;
                }
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return;
            }
            if (config.hasLiveSources() && System.nanoTime() - nextRefresh >= 0) {
                refreshLive(engine, config, err);
                nextRefresh = System.nanoTime() + intervalNanos;
            }
        }
    }

    /**
     * Rebuilds every live source's guest from a fresh read. Each source is re-opened on its own: one
     * that is gone (or, for {@code qemu}, finds no guest) is dropped with a line on stderr, the others
     * stay, and it comes back when it can be read again.
     */
    private void refreshLive(DedupEngine engine, DaemonConfig config, PrintWriter err) {
        for (Guest guest : liveGuests) {
            guest.destroy();
        }
        liveGuests.clear();
        for (DaemonConfig.Source source : config.sources()) {
            if (source instanceof DaemonConfig.Source.File) {
                continue;
            }
            try {
                List<ProcessSource> fresh = source instanceof DaemonConfig.Source.Pid pid
                        ? ProcessSources.open(List.of(pid.pid()), false, skipped(err))
                        : ProcessSources.open(List.of(), true, skipped(err));
                try {
                    loadLive(engine, config, fresh);
                } finally {
                    ProcessSources.closeAll(fresh);
                }
            } catch (DaemonException | DedupException e) {
                err.println("samepage daemon: re-reading live sources: " + e.getMessage());
                err.flush();
            }
        }
    }

    private void loadLive(DedupEngine engine, DaemonConfig config, List<ProcessSource> processes) {
        KernelKsm kernelKsm = KernelKsm.system();
        for (ProcessSource process : processes) {
            Guest guest = engine.createGuest(domain(engine, config, process.name()), process.name(), process.bytes());
            liveGuests.add(guest);
            process.loadInto(guest, kernelKsm);
        }
    }

    private MergeDomain domain(DedupEngine engine, DaemonConfig config, String source) {
        String name = config.domainPerSource() ? source : "shared";
        return domains.computeIfAbsent(name, engine::createDomain);
    }

    /** SIGTERM/SIGINT: ask {@link #serve} to stop, wait for the cleanup, and exit with its code (0). */
    private void installShutdownHook(PrintWriter err) {
        Runtime.getRuntime().addShutdownHook(Thread.ofPlatform().name("samepage-daemon-stop").unstarted(() -> {
            stopRequested.countDown();
            boolean clean;
            try {
                clean = stopped.await(10, TimeUnit.SECONDS);
            } catch (InterruptedException e) {
                clean = false;
            }
            err.flush();
            System.out.flush();
            // A JVM ended by a signal exits 128+signal; a daemon asked to stop has done its job: exit 0.
            Runtime.getRuntime().halt(clean ? exitCode.get() : SamepageCommand.EXIT_FAILURE);
        }));
    }

    private static java.util.function.Consumer<String> skipped(PrintWriter err) {
        return line -> {
            err.println("samepage daemon: " + line);
            err.flush();
        };
    }

    private static EngineContext context(DaemonConfig config, List<SourceFile> files, List<ProcessSource> processes) {
        long totalBytes = PoolSize.sourceBytes(files, processes);
        long poolBytes = config.poolMib() != null ? config.poolMib() << 20
                : PoolSize.defaultBytes(files, processes, config.domainPerSource());
        EngineContext context = new EngineContext().poolBytes(poolBytes);
        config.applyTo(context.knobs());
        try {
            return context.conclude();
        } catch (DedupException e) {
            throw CommandException.badInput((config.poolMib() != null ? "pool_mib " + config.poolMib()
                    : "the sources' " + totalBytes + " bytes") + ": " + e.getMessage());
        }
    }
}
