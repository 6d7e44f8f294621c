package io.samepage.daemon;

import io.samepage.core.DedupEngine;
import io.samepage.core.EngineContext;
import io.samepage.core.ScanKnobs;
import io.samepage.host.KsmPolicyLoop;
import java.net.InetAddress;
import java.nio.file.Path;
import java.util.HashSet;
import java.util.List;
import java.util.Objects;
import java.util.Set;
import java.util.function.Consumer;
import org.agrona.ErrorHandler;
import org.agrona.LangUtil;

/**
 * The daemon, as a library: {@link #launch} loads the file sources of a {@link Context} into one engine,
 * estimates the live ones, starts its scanner, the publisher of its counters and, with live sources, their
 * refresher (which estimates them again each interval), each on a thread of its own ({@link DaemonAgents}),
 * and returns; {@link #reload} applies a new config's live settings; {@link #close} stops them; a thread
 * that stops before then (on an {@link Error}, say) is told to {@link Context#fatalErrorHandler}. Aeron's {@code MediaDriver} is the model:
 *
 * <pre>{@code
 * Daemon.Context context = new Daemon.Context()
 *         .sources(List.of(new Source.File("/var/lib/vm1.mem"), new Source.Pid(4242)))
 *         .countersFile(Path.of("/run/samepage/counters"));
 * context.knobs().pagesToScan(500);
 * try (Daemon daemon = Daemon.launch(context)) {
 *     new ShutdownSignalBarrier().await();
 * }
 * }</pre>
 *
 * <p>Launch is all or nothing. It opens in this order, and if a step fails it closes what the steps
 * before it opened, in reverse, and throws: the counters file (its path claimed, so a foreign file or
 * another daemon's is refused before any work, and the new file written whole under a temporary name),
 * the sources (every file checked and every live source opened before any is read), the engine with
 * every file loaded (the live sources estimated, {@link DaemonGuests}), the metrics server, the threads
 * (the KSM policy loop's, {@link KsmPolicyAgent}, with {@code ksm_policy} on or dry_run); last, the
 * counters file is put into place. A launch that fails leaves the old counters file as it was.
 *
 * <p>Thread safety: launch on any thread; {@link #reload} and {@link #close} from any thread, {@link #close}
 * any number of times.
 */
public final class Daemon implements AutoCloseable {

    private final Context context;
    private final DedupEngine engine;
    private final DaemonMetrics published;
    private final MetricsServer metrics;
    private final CountersFile counters;
    private final DaemonAgents agents;
    private final Refresher refresher;
    private final KsmPolicyAgent policy;
    private long estimateIntervalSeconds;
    private boolean closed;

    /** A launched daemon: {@link DaemonLaunch} made and started its parts. */
    Daemon(Context context, DedupEngine engine, DaemonMetrics published, MetricsServer metrics,
            CountersFile counters, DaemonAgents agents, Refresher refresher, KsmPolicyAgent policy) {
        this.context = context;
        this.engine = engine;
        this.published = published;
        this.metrics = metrics;
        this.counters = counters;
        this.agents = agents;
        this.refresher = refresher;
        this.policy = policy;
        this.estimateIntervalSeconds = context.estimateIntervalSeconds();
    }

    /**
     * Launches a daemon from {@code context}, concluding it first if it has not concluded. An interrupt of
     * the launching thread stops it: the read of a source in progress fails (file channels close on an
     * interrupt), what was opened is closed, and it throws, {@link DaemonException.Kind#FAILED}, with the
     * thread's interrupt status set ({@link DaemonService#launch} is how a SIGTERM ends a long launch).
     *
     * @throws DaemonException naming the setting, source, counters file or port that is wrong (its kind says which)
     * @throws IllegalStateException if the context launched a daemon already; nothing is left running on a throw
     */
    public static Daemon launch(Context context) {
        return DaemonLaunch.launch(context);
    }

    /** The daemon's engine: its counters, guests and live knobs ({@link Context#knobs()}). */
    public DedupEngine engine() {
        return engine;
    }

    /** The counters file it publishes to. */
    public Path countersFile() {
        return context.countersFile();
    }

    /** The port {@code /metrics} is served on (the one bound, with {@link Context#METRICS_PORT_ANY}), or 0 if none. */
    public int metricsPort() {
        return metrics != null ? metrics.port() : 0;
    }

    /** The URL of {@code /metrics} ({@code http://127.0.0.1:9464/metrics}), or null if it serves none. */
    public String metricsUrl() {
        return metrics != null ? metrics.url() : null;
    }

    /**
     * Applies a new config to the running daemon, all or nothing ({@link Reload}): the KSM knobs (a knob
     * the config leaves out goes back to its default) and {@code estimate_interval_seconds} change live;
     * a change to the sources, {@code domain_per_source}, {@code pool_mib}, {@code metrics_port} or
     * {@code counters_file} is refused, as is a knob the engine refuses now. Safe from any thread;
     * reloads run one at a time.
     *
     * @return what changed, on one line ({@code pages_to_scan 100 -> 500}), or {@code nothing changed}
     * @throws DaemonException       {@link DaemonException.Kind#CONFIG} saying what was refused; the
     *                               daemon runs on as it was
     * @throws IllegalStateException if the daemon is closed
     */
    public synchronized String reload(DaemonConfig config) {
        if (closed) {
            throw new IllegalStateException("the daemon is closed");
        }
        String changed = Reload.apply(context, context.ksmPolicy(), estimateIntervalSeconds, engine.knobs(), refresher, config);
        estimateIntervalSeconds = config.estimateIntervalSeconds();
        if (policy != null) {
            policy.intervalSeconds(estimateIntervalSeconds);
        }
        return changed;
    }

    /**
     * Stops the daemon: its threads stop, the counters get a last update and the counters file is marked
     * closed (it keeps the last values), the metrics server stops, the engine closes. A step that throws
     * (an {@link OutOfMemoryError} too) stops none of the others: it is thrown once all have run.
     * Idempotent: later calls return once the first is done.
     */
    @Override
    public synchronized void close() {
        if (closed) {
            return;
        }
        closed = true;
        // Nothing is allocated before the threads stop and the port is freed: an OutOfMemoryError on the
        // way (the last update's values, say) is kept for the end, and everything still closes.
        Throwable failure = DaemonLaunch.close(agents, null);
        try {
            counters.update(published.counterValues(), System.currentTimeMillis());
        } catch (RuntimeException | Error e) {
            failure = DaemonLaunch.firstOf(failure, e);
        }
        failure = DaemonLaunch.close(counters, failure);
        failure = DaemonLaunch.close(metrics, failure);
        failure = DaemonLaunch.close(engine, failure);
        if (failure != null) {
            LangUtil.rethrowUnchecked(failure);
        }
    }

    /**
     * Everything a {@link Daemon} is launched from, Aeron-style: each setting has a name, a default (a
     * public constant) and its unit in its name, and the whole is validated once, when it concludes.
     * {@link DaemonConfig#applyTo(Context)} fills one in from a config file.
     *
     * <p>A context concludes exactly once and launches exactly one daemon: its {@link #knobs()} become
     * that daemon's live knobs. A second {@link #conclude()}, a second launch, and a setting changed after
     * it concluded are refused with {@link IllegalStateException}.
     *
     * <p>Not thread safe: fill it in on one thread, then hand it to {@link Daemon#launch}.
     */
    public static final class Context {

        /** Default pool size: 0, sized from the sources ({@link PoolSize#defaultBytes}). */
        public static final long DEFAULT_POOL_MIB = 0;

        /** The largest frame pool the engine takes ({@link EngineContext#MAX_POOL_BYTES}), in whole MiB. */
        public static final long MAX_POOL_MIB = EngineContext.MAX_POOL_BYTES >> 20;

        /** Default metrics port: 0, no metrics served. */
        public static final int DEFAULT_METRICS_PORT = 0;

        /** The metrics port that asks for any free one, bound at launch ({@code metrics_port=any}). */
        public static final int METRICS_PORT_ANY = -1;

        /** Default address {@code /metrics} listens on: loopback, {@code 127.0.0.1}. */
        public static final String DEFAULT_METRICS_ADDRESS = "127.0.0.1";

        /** Default seconds between re-reads of live sources. */
        public static final long DEFAULT_ESTIMATE_INTERVAL_SECONDS = 60;

        /** Default longest gap between two updates of the counters file, in milliseconds. */
        public static final long DEFAULT_PUBLISH_INTERVAL_MILLIS = 250;

        private final EngineContext engineContext = new EngineContext();
        private List<Source> sources = List.of();
        private boolean domainPerSource;
        private long poolMib = DEFAULT_POOL_MIB;
        private int metricsPort = DEFAULT_METRICS_PORT;
        private InetAddress metricsAddress = InetAddress.ofLiteral(DEFAULT_METRICS_ADDRESS);
        private Path countersFile;
        private boolean countersFileIsDefault;
        private long estimateIntervalSeconds = DEFAULT_ESTIMATE_INTERVAL_SECONDS;
        private long publishIntervalMillis = DEFAULT_PUBLISH_INTERVAL_MILLIS;
        private KsmPolicyConfig ksmPolicy = KsmPolicyConfig.defaults();
        private KsmPolicyLoop.Context ksmPolicyLoop;
        private Consumer<String> noticeHandler = line -> System.err.println("samepage daemon: " + line);
        private ErrorHandler errorHandler;
        private Consumer<DaemonException> fatalErrorHandler;
        private boolean concluded;
        private boolean launched;

        public List<Source> sources() {
            return sources;
        }

        /** The sources, one guest each (every QEMU guest one each); at least one, none twice. */
        public Context sources(List<Source> sources) {
            checkNotConcluded();
            this.sources = List.copyOf(sources);
            return this;
        }

        public boolean domainPerSource() {
            return domainPerSource;
        }

        /** Whether each source gets a merge domain of its own; default false: all share one. */
        public Context domainPerSource(boolean domainPerSource) {
            checkNotConcluded();
            this.domainPerSource = domainPerSource;
            return this;
        }

        public long poolMib() {
            return poolMib;
        }

        /** The frame pool in MiB, 1 to {@link #MAX_POOL_MIB}; 0 (the default) sizes it from the sources. */
        public Context poolMib(long poolMib) {
            checkNotConcluded();
            this.poolMib = poolMib;
            return this;
        }

        public int metricsPort() {
            return metricsPort;
        }

        /** The port of {@code /metrics}, 1 to 65535 or {@link #METRICS_PORT_ANY}; 0 (the default) serves none. */
        public Context metricsPort(int metricsPort) {
            checkNotConcluded();
            this.metricsPort = metricsPort;
            return this;
        }

        public InetAddress metricsAddress() {
            return metricsAddress;
        }

        /** The address {@code /metrics} listens on; default {@link #DEFAULT_METRICS_ADDRESS}, loopback. */
        public Context metricsAddress(InetAddress metricsAddress) {
            checkNotConcluded();
            this.metricsAddress = metricsAddress;
            return this;
        }

        /** The counters file; after {@link #conclude()}, never null. */
        public Path countersFile() {
            return countersFile;
        }

        /**
         * Where the counters file goes; null (the default) means {@link CountersFile#defaultPath()}, whose
         * directory the daemon creates. Any other path's directory must exist.
         */
        public Context countersFile(Path countersFile) {
            checkNotConcluded();
            this.countersFile = countersFile;
            return this;
        }

        public long estimateIntervalSeconds() {
            return estimateIntervalSeconds;
        }

        /** Seconds between re-reads of the live sources, at least 1. */
        public Context estimateIntervalSeconds(long seconds) {
            checkNotConcluded();
            this.estimateIntervalSeconds = seconds;
            return this;
        }

        public long publishIntervalMillis() {
            return publishIntervalMillis;
        }

        /**
         * The longest gap between two updates of the counters file, in milliseconds, at least 1. Keep it
         * well under {@link CountersFile#LIVENESS_TIMEOUT_MILLIS}: a reader judges a daemon whose heartbeat
         * is older than that stale.
         */
        public Context publishIntervalMillis(long millis) {
            checkNotConcluded();
            this.publishIntervalMillis = millis;
            return this;
        }

        public KsmPolicyConfig ksmPolicy() {
            return ksmPolicy;
        }

        /** How kernel KSM is to be driven (the config's {@code ksm_*} keys); default off. */
        public Context ksmPolicy(KsmPolicyConfig ksmPolicy) {
            checkNotConcluded();
            this.ksmPolicy = Objects.requireNonNull(ksmPolicy, "ksmPolicy");
            return this;
        }

        /** The policy loop's context before the {@code ksm_*} settings; default over the kernel's KSM. */
        public KsmPolicyLoop.Context ksmPolicyLoop() {
            return ksmPolicyLoop != null ? ksmPolicyLoop : (ksmPolicyLoop = new KsmPolicyLoop.Context());
        }

        /** A policy loop context (its KSM directory, estimator, clocks) the {@code ksm_*} settings fill in. */
        public Context ksmPolicyLoop(KsmPolicyLoop.Context loop) {
            checkNotConcluded();
            this.ksmPolicyLoop = Objects.requireNonNull(loop, "ksmPolicyLoop");
            return this;
        }

        public Consumer<String> noticeHandler() {
            return noticeHandler;
        }

        /**
         * Told, one line each, what an operator should know but that stops nothing: a QEMU guest skipped,
         * a live source that could not be re-read, a counters file deleted under the daemon. Default: the
         * line on stderr after {@code samepage daemon: }. Called on the launching thread and the daemon's.
         */
        public Context noticeHandler(Consumer<String> handler) {
            checkNotConcluded();
            this.noticeHandler = handler;
            return this;
        }

        /** The handler of exceptions on the daemon's threads; after {@link #conclude()}, never null. */
        public ErrorHandler errorHandler() {
            return errorHandler;
        }

        /**
         * Told of an exception thrown by the scanner or the publisher, which then go on. Default: one
         * notice, the thread's name and the error's message (a Samepage error's; else its type too).
         */
        public Context errorHandler(ErrorHandler handler) {
            checkNotConcluded();
            this.errorHandler = handler;
            return this;
        }

        public Consumer<DaemonException> fatalErrorHandler() {
            return fatalErrorHandler;
        }

        /**
         * Told once, on the dying thread, when one of the daemon's threads stops for good before the close (on
         * an {@link Error}, after the {@link #errorHandler} heard of it, or any other way: {@link DaemonAgents}),
         * with a {@link DaemonException.Kind#FAILED} naming the thread: the daemon no longer does all its work,
         * so close it. Default: one notice saying so. {@code samepage daemon} ends and exits 1.
         */
        public Context fatalErrorHandler(Consumer<DaemonException> handler) {
            checkNotConcluded();
            this.fatalErrorHandler = handler;
            return this;
        }

        /**
         * The scanner's knobs under their {@code /sys/kernel/mm/ksm} names ({@code pages_to_scan},
         * {@code sleep_millisecs}, ...); each checks what it is set to. Once launched, they are the running
         * daemon's live knobs.
         */
        public ScanKnobs knobs() {
            return engineContext.knobs();
        }

        /** The engine's context; the daemon sets its pool size and concludes it at launch. */
        EngineContext engineContext() {
            return engineContext;
        }

        /**
         * Validates the settings once.
         *
         * @throws DaemonException       {@link DaemonException.Kind#CONFIG}, naming the setting and why
         * @throws IllegalStateException if it has concluded already
         */
        public Context conclude() {
            if (concluded) {
                throw new IllegalStateException("this Daemon.Context has concluded already: a context concludes "
                        + "once and launches one daemon; fill in a new one");
            }
            if (sources.isEmpty()) {
                throw invalid("sources: give at least one (a file, a pid or qemu)");
            }
            Set<Source> seen = new HashSet<>();
            for (Source source : sources) {
                if (!seen.add(source)) {
                    throw invalid("sources: " + source + " given twice (a guest's name must be unique)");
                }
            }
            if (poolMib < 0 || poolMib > MAX_POOL_MIB) {
                throw invalid("poolMib must be 1 to " + MAX_POOL_MIB + ", or 0 to size the pool from the sources, not "
                        + poolMib);
            }
            if (metricsPort < METRICS_PORT_ANY || metricsPort > 65535) {
                throw invalid("metricsPort must be a port, 1 to 65535, METRICS_PORT_ANY or 0 for none, not " + metricsPort);
            }
            if (metricsAddress == null) {
                throw invalid("metricsAddress must be set (the default is " + DEFAULT_METRICS_ADDRESS + ")");
            }
            if (estimateIntervalSeconds < 1) {
                throw invalid("estimateIntervalSeconds must be at least 1, not " + estimateIntervalSeconds);
            }
            if (publishIntervalMillis < 1) {
                throw invalid("publishIntervalMillis must be at least 1, not " + publishIntervalMillis);
            }
            if (noticeHandler == null) {
                throw invalid("noticeHandler must be set");
            }
            Consumer<String> notices = noticeHandler;
            if (errorHandler == null) {
                errorHandler = e -> notices.accept(Thread.currentThread().getName() + ": " + DaemonException.oneLine(e));
            }
            if (fatalErrorHandler == null) {
                fatalErrorHandler = e -> notices.accept(e.getMessage());
            }
            if (countersFile == null) {
                countersFile = CountersFile.defaultPath();
                countersFileIsDefault = true;
            }
            concluded = true;
            return this;
        }

        /** Whether the counters file is the default one, whose directory may be created. */
        boolean countersFileIsDefault() {
            return countersFileIsDefault;
        }

        boolean isConcluded() {
            return concluded;
        }

        /** Claims the concluded context for the daemon being launched. @throws IllegalStateException if claimed */
        synchronized void claim() {
            if (launched) {
                throw new IllegalStateException("this Daemon.Context launched a daemon already; its knobs are that "
                        + "daemon's: fill in a new context for another");
            }
            launched = true;
        }

        private void checkNotConcluded() {
            if (concluded) {
                throw new IllegalStateException("this Daemon.Context has concluded: its settings are fixed");
            }
        }

        private static DaemonException invalid(String what) {
            return new DaemonException(DaemonException.Kind.CONFIG, what);
        }
    }
}
