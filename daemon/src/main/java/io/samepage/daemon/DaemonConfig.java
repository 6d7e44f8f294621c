package io.samepage.daemon;

import io.samepage.core.DedupException;
import io.samepage.core.ScanKnobs;
import io.samepage.daemon.DaemonException.Kind;
import java.io.IOException;
import java.net.InetAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * The daemon's configuration, parsed and validated once from a {@code key=value} file: one setting per
 * line, {@code #} starts a comment line, blank lines are ignored, spaces around key and value are
 * trimmed. The KSM knob names set the engine's {@link ScanKnobs} (checked with the engine's own rules,
 * in file order); the {@code ksm_*} keys ({@link KsmPolicyConfig#KEYS}) set how kernel KSM is driven;
 * {@code source} is repeatable; every other key may appear once. Each key names a
 * {@link Daemon.Context} setting ({@code metrics_port} is {@code metricsPort}), and {@link #applyTo(Daemon.Context)}
 * fills one in.
 *
 * <p>Thread safety: immutable once parsed.
 */
public final class DaemonConfig {

    /** The KSM knob keys, under {@code /sys/kernel/mm/ksm}'s names. */
    public static final Set<String> KNOB_KEYS = Set.copyOf(ScanKnobs.NAMES);

    /** The largest config file read: a config is a few lines, so more is a mistake (a log, an image). */
    static final int MAX_FILE_BYTES = 1 << 20;

    /** The daemon's own keys. */
    public static final Set<String> DAEMON_KEYS = Set.of("source", "domain_per_source", "pool_mib",
            "metrics_port", "metrics_address", "counters_file", "estimate_interval_seconds");

    private record Knob(int line, String key, String value) {
    }

    private final List<Knob> knobs;
    private final List<Source> sources;
    private final boolean domainPerSource;
    private final Long poolMib;
    private final int metricsPort;
    private final InetAddress metricsAddress;
    /** Null where the file gives none: the context then takes the default, whose directory it may create. */
    private final Path countersFile;
    private final long estimateIntervalSeconds;
    private final KsmPolicyConfig ksmPolicy;

    private DaemonConfig(Parser p) {
        this.knobs = List.copyOf(p.knobs);
        this.sources = List.copyOf(p.sources);
        this.domainPerSource = p.domainPerSource;
        this.poolMib = p.poolMib;
        this.metricsPort = p.metricsPort;
        this.metricsAddress = p.metricsAddress;
        this.countersFile = p.countersFile;
        this.estimateIntervalSeconds = p.estimateIntervalSeconds;
        this.ksmPolicy = p.ksmPolicy;
    }

    /** Reads and validates {@code file}. @throws DaemonException naming the file (and line) that is wrong */
    public static DaemonConfig read(Path file) {
        // Checked here, not only by the CLI before the first read: a reload (SIGHUP) reads it again, and
        // a FIFO put in its place would block the signal's thread, a device fill the heap.
        if (Files.isDirectory(file)) {
            throw new DaemonException(Kind.CONFIG, file + ": is a directory");
        }
        if (Files.exists(file) && !Files.isRegularFile(file)) {
            throw new DaemonException(Kind.CONFIG, file + ": not a regular file");
        }
        byte[] bytes;
        try (java.io.InputStream in = Files.newInputStream(file)) {
            bytes = in.readNBytes(MAX_FILE_BYTES + 1);
        } catch (IOException e) {
            String reason = IoErrors.reason(e);
            throw new DaemonException(Kind.CONFIG, reason.startsWith(file + ": ") ? reason
                    : file + ": cannot be read: " + reason);
        }
        if (bytes.length > MAX_FILE_BYTES) {
            throw new DaemonException(Kind.CONFIG, file + ": larger than " + (MAX_FILE_BYTES >> 10)
                    + " KiB; a config file is a few lines");
        }
        String text;
        try {
            text = StandardCharsets.UTF_8.newDecoder().decode(java.nio.ByteBuffer.wrap(bytes)).toString();
        } catch (java.nio.charset.CharacterCodingException e) {
            throw new DaemonException(Kind.CONFIG, file + ": not UTF-8 text");
        }
        if (text.startsWith("\uFEFF")) {
            text = text.substring(1);       // a byte order mark some editors write: not part of the first key
        }
        return parse(file.toString(), text.lines().toList());
    }

    /** Parses {@code lines} of a file called {@code name}. @throws DaemonException {@code name:LINE: what} */
    public static DaemonConfig parse(String name, List<String> lines) {
        Parser parser = new Parser(name);
        for (int i = 0; i < lines.size(); i++) {
            parser.line(i + 1, lines.get(i));
        }
        if (parser.sources.isEmpty()) {
            throw new DaemonException(Kind.CONFIG,
                    name + ": no source: give at least one 'source=' line (a file, pid:PID or qemu)");
        }
        return new DaemonConfig(parser);
    }

    /** Applies the knobs in file order (each was checked against the engine's rules while parsing). */
    public void applyTo(ScanKnobs target) {
        for (Knob knob : knobs) {
            target.set(knob.key(), knob.value());
        }
    }

    /** Sets every setting of {@code context} that the file gives, and the knobs in file order. */
    public Daemon.Context applyTo(Daemon.Context context) {
        applyTo(context.knobs());
        return context.sources(sources)
                .domainPerSource(domainPerSource)
                .poolMib(poolMib != null ? poolMib : Daemon.Context.DEFAULT_POOL_MIB)
                .metricsPort(metricsPort)
                .metricsAddress(metricsAddress)
                .countersFile(countersFile)
                .estimateIntervalSeconds(estimateIntervalSeconds)
                .ksmPolicy(ksmPolicy);
    }

    public List<Source> sources() {
        return sources;
    }

    /** Whether each source gets a merge domain of its own (default: all share one). */
    public boolean domainPerSource() {
        return domainPerSource;
    }

    /** The frame pool in MiB, or null for the daemon's default (sized from the sources). */
    public Long poolMib() {
        return poolMib;
    }

    /**
     * The port of {@code /metrics}; {@link Daemon.Context#METRICS_PORT_ANY} for {@code any}, a free port
     * bound at launch; 0 (the default) serves no metrics.
     */
    public int metricsPort() {
        return metricsPort;
    }

    /** The address {@code /metrics} listens on (default {@link Daemon.Context#DEFAULT_METRICS_ADDRESS}). */
    public InetAddress metricsAddress() {
        return metricsAddress;
    }

    /** The counters file: the one given, or {@link CountersFile#defaultPath()}. */
    public Path countersFile() {
        return countersFile != null ? countersFile : CountersFile.defaultPath();
    }

    public long estimateIntervalSeconds() {
        return estimateIntervalSeconds;
    }

    /** The {@code ksm_*} keys: how kernel KSM is driven ({@link KsmPolicyConfig#defaults()} where none is given). */
    public KsmPolicyConfig ksmPolicy() {
        return ksmPolicy;
    }

    /** Whether any source is a live process (which needs CAP_SYS_PTRACE for another user's process). */
    public boolean hasLiveSources() {
        for (Source source : sources) {
            if (!(source instanceof Source.File)) {
                return true;
            }
        }
        return false;
    }

    private static boolean flag(String value) {
        return switch (value) {
            case "0" -> false;
            case "1" -> true;
            default -> throw new IllegalArgumentException("must be 0 or 1");
        };
    }

    private static long longValue(String value, long min) {
        long v;
        try {
            v = Long.parseLong(value);
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("must be a whole number, not '" + value + "'");
        }
        if (v < min) {
            throw new IllegalArgumentException("must be at least " + min + ", not " + v);
        }
        return v;
    }

    /** A port, 0 (none) to 65535; the refusal names {@code any} too, the other value {@code metrics_port} takes. */
    private static int port(String value) {
        long port;
        try {
            port = Long.parseLong(value);
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("must be a port, 0 to 65535, or any, not '" + value + "'");
        }
        if (port < 0 || port > 65535) {
            throw new IllegalArgumentException("must be a port, 0 to 65535, or any, not " + port);
        }
        return (int) port;
    }

    /** An IP address literal, never a host name: the config is read before anything, with no lookup. */
    private static InetAddress address(String value) {
        try {
            return InetAddress.ofLiteral(value);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("must be an IP address such as 127.0.0.1, ::1 or 0.0.0.0, not '"
                    + value + "'");
        }
    }

    private static int intValue(String value, int min) {
        long v = longValue(value, min);
        if (v > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("must be at most " + Integer.MAX_VALUE + ", not " + v);
        }
        return (int) v;
    }

    /** Single-use parse state. */
    private static final class Parser {
        private final String name;
        private final ScanKnobs check = new ScanKnobs();
        private final Map<String, Integer> seen = new HashMap<>();
        private final List<Knob> knobs = new ArrayList<>();
        private final List<Source> sources = new ArrayList<>();
        private boolean domainPerSource;
        private Long poolMib;
        private int metricsPort;
        private InetAddress metricsAddress = InetAddress.ofLiteral(Daemon.Context.DEFAULT_METRICS_ADDRESS);
        private Path countersFile;
        private long estimateIntervalSeconds = Daemon.Context.DEFAULT_ESTIMATE_INTERVAL_SECONDS;
        private KsmPolicyConfig ksmPolicy = KsmPolicyConfig.defaults();

        Parser(String name) {
            this.name = name;
        }

        void line(int number, String raw) {
            String line = raw.strip();
            if (line.isEmpty() || line.startsWith("#")) {
                return;
            }
            int eq = line.indexOf('=');
            if (eq < 0) {
                throw error(number, "'" + line + "' is not key=value");
            }
            String key = line.substring(0, eq).strip();
            String value = line.substring(eq + 1).strip();
            if (!KNOB_KEYS.contains(key) && !DAEMON_KEYS.contains(key) && !KsmPolicyConfig.KEYS.contains(key)) {
                throw error(number, "unknown key '" + key + "'");
            }
            if (value.isEmpty()) {
                throw error(number, key + ": no value");
            }
            if (!key.equals("source")) {
                Integer first = seen.putIfAbsent(key, number);
                if (first != null) {
                    throw error(number, key + ": given twice (first on line " + first + ")");
                }
            }
            try {
                setting(number, key, value);
            } catch (DedupException e) {
                throw error(number, e.getMessage());    // a knob's refusal names the knob and the value itself
            } catch (IllegalArgumentException e) {
                throw error(number, key + "=" + value + ": " + e.getMessage());
            }
        }

        private void setting(int number, String key, String value) {
            if (KNOB_KEYS.contains(key)) {
                check.set(key, value);
                knobs.add(new Knob(number, key, value));
                return;
            }
            if (KsmPolicyConfig.KEYS.contains(key)) {
                ksmPolicy = ksmPolicy.with(key, value);
                return;
            }
            switch (key) {
                case "source" -> source(number, value);
                case "domain_per_source" -> domainPerSource = flag(value);
                case "pool_mib" -> {
                    long mib = longValue(value, 1);
                    if (mib > Daemon.Context.MAX_POOL_MIB) {
                        throw new IllegalArgumentException("must be at most " + Daemon.Context.MAX_POOL_MIB
                                + " (about 8 TiB), not " + mib);
                    }
                    poolMib = mib;
                }
                case "metrics_port" -> metricsPort = value.equals("any") ? Daemon.Context.METRICS_PORT_ANY : port(value);
                case "metrics_address" -> metricsAddress = address(value);
                case "counters_file" -> countersFile = Path.of(value);
                case "estimate_interval_seconds" -> estimateIntervalSeconds = longValue(value, 1);
                default -> throw new IllegalStateException("unhandled key " + key);
            }
        }

        private void source(int number, String value) {
            Source source;
            if (value.equals("qemu")) {
                source = new Source.Qemu();
            } else if (value.startsWith("pid:")) {
                source = new Source.Pid(intValue(value.substring(4), 1));
            } else {
                source = new Source.File(value);
            }
            if (sources.contains(source)) {
                throw new IllegalArgumentException("given twice (a guest's name must be unique)");
            }
            sources.add(source);
        }

        /** {@code what} echoes the line, so its control characters are escaped: the message stays one line. */
        private DaemonException error(int number, String what) {
            StringBuilder message = new StringBuilder(name).append(':').append(number).append(": ");
            for (int i = 0; i < what.length(); i++) {
                char ch = what.charAt(i);
                if (Character.isISOControl(ch) || ch == '\u2028' || ch == '\u2029') {
                    message.append(String.format("\\u%04x", (int) ch));
                } else {
                    message.append(ch);
                }
            }
            return new DaemonException(Kind.CONFIG, message.toString());
        }
    }
}
