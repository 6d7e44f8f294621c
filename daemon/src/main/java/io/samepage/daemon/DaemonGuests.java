package io.samepage.daemon;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.samepage.core.DedupEngine;
import io.samepage.core.DedupException;
import io.samepage.core.EngineContext;
import io.samepage.core.Guest;
import io.samepage.core.MergeDomain;
import io.samepage.daemon.DaemonException.Kind;
import io.samepage.hashing.Pages;
import io.samepage.host.GuestSketch;
import io.samepage.host.PageDigestEstimator;
import io.samepage.host.ProcessScanException;
import java.lang.foreign.Arena;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * The daemon's engine, its guests, and the estimate of its live sources. Files are loaded once into
 * guests of the engine, as {@code samepage scan} loads them ({@link SourceFile}), and merged. Live
 * sources ({@code pid:}, {@code qemu}) are not copied into the engine: each is read once per
 * {@code estimate_interval_seconds} into a {@link io.samepage.host.PageDigestEstimator}, one guest each,
 * as {@code scan --pid} estimates ({@link SourceEstimate}), and the last estimate is kept
 * ({@link #liveEstimate()}). With {@code domainPerSource} each file has a merge domain of its own, else
 * all share one; the estimate of the live sources is one domain.
 *
 * <p>The rejected alternative, the first daemon's: a fresh copy of every live source in the engine at
 * every interval, merged by the scanner. It cost the sources' resident memory again in the pool and a
 * copy per interval, to report what a digest per page reports.
 *
 * <p>Not thread safe: {@link #load} runs on the launching thread, then {@link #refreshLive()} on the
 * refresher's only; {@link #liveEstimate()} from any thread. The engine itself is safe to scan meanwhile.
 */
final class DaemonGuests {

    private static final ObjectMapper JSON = new ObjectMapper();

    private static final String SHARED_DOMAIN = "shared";

    private final DedupEngine engine;
    private final Daemon.Context context;
    private final Map<String, MergeDomain> domains = new HashMap<>();
    private volatile SourceEstimate.Result liveEstimate;
    /** The files' sketches, made as they were loaded (their content does not change after). */
    private volatile List<Map<String, Object>> fileSketches = List.of();
    /** Why the last estimate of the live sources failed, or null. */
    private String liveReadFailure;
    /** Live sources that failed at their last re-read, with what was said: told again only on a change. */
    private final Map<Source, String> failing = new HashMap<>();
    /** {@code pid:} sources whose process exited: never read again. */
    private final Set<Source> exited = new HashSet<>();

    private DaemonGuests(DedupEngine engine, Daemon.Context context) {
        this.engine = engine;
        this.context = context;
    }

    /**
     * Checks every file and opens every live source before any is read, builds the engine with a pool
     * for the files, loads each file into its guest, and estimates the live sources once. The live
     * sources are closed again once read.
     *
     * @throws DaemonException {@link Kind#SOURCE} for a source that cannot be used, {@link Kind#CONFIG} for a
     *                         pool too small (the sources do not fit) or too large, {@link Kind#FAILED} if
     *                         loading fails otherwise; the engine is closed again then
     */
    static DaemonGuests load(Daemon.Context context) {
        List<SourceFile> files = new ArrayList<>();
        List<Integer> pids = new ArrayList<>();
        boolean qemu = false;
        for (Source source : context.sources()) {
            switch (source) {
                case Source.File file -> files.add(SourceFile.check(file.path()));
                case Source.Pid pid -> pids.add(pid.pid());
                case Source.Qemu _ -> qemu = true;
            }
        }
        List<ProcessSource> processes = pids.isEmpty() && !qemu ? List.of()
                : ProcessSources.open(pids, qemu, context.noticeHandler());
        try {
            DedupEngine engine;
            try {
                engine = DedupEngine.create(engineContext(context, files));
            } catch (DedupException e) {
                throw failed(e);
            }
            try {
                DaemonGuests guests = new DaemonGuests(engine, context);
                guests.loadFiles(files);
                if (guests.hasLiveSources()) {
                    guests.estimateLive(processes);
                }
                return guests;
            } catch (DaemonException e) {
                engine.close();
                throw poolTooSmall(context, e);
            } catch (RuntimeException | Error e) {
                engine.close();
                throw e;
            }
        } finally {
            ProcessSources.closeAll(processes);
        }
    }

    DedupEngine engine() {
        return engine;
    }

    boolean hasLiveSources() {
        for (Source source : context.sources()) {
            if (!(source instanceof Source.File)) {
                return true;
            }
        }
        return false;
    }

    /**
     * The last estimate of the live sources, one guest each in source order (a {@code qemu} source as its
     * guests found then); null if the daemon has none.
     */
    SourceEstimate.Result liveEstimate() {
        return liveEstimate;
    }

    /**
     * Estimates the live sources again from a fresh read. Each source is re-opened on its own: one that
     * cannot be read (or, for {@code qemu}, finds no guest) is left out with a notice, the others are
     * estimated, and it comes back when it can be read again. A notice is given once per change of
     * state, not at every re-read: when a source first fails (or fails otherwise), and when it is read
     * again. A {@code pid:} source whose process has exited is dropped for good, with one notice: a
     * process that later has its pid is another process; a re-read that throws before that notice is
     * given keeps it listed, for the next to tell. If reading the sources fails, the last
     * estimate stays, told once.
     */
    void refreshLive() {
        List<ProcessSource> fresh = new ArrayList<>();
        try {
            for (Source source : context.sources()) {
                if (source instanceof Source.File || exited.contains(source)) {
                    continue;
                }
                try {
                    List<ProcessSource> opened = source instanceof Source.Pid pid
                            ? ProcessSources.open(List.of(pid.pid()), false, context.noticeHandler())
                            : ProcessSources.open(List.of(), true, context.noticeHandler());
                    try {
                        fresh.addAll(opened);
                    } catch (RuntimeException | Error e) {     // the list could not grow: closed, not lost
                        ProcessSources.closeAllAfter(opened, e);
                        throw e;
                    }
                    if (failing.remove(source) != null) {
                        context.noticeHandler().accept(source + ": read again");
                    }
                } catch (DaemonException e) {
                    failed(source, e);
                }
            }
            try {
                estimateLive(fresh);
                liveReadFailure = null;
            } catch (DaemonException e) {
                if (!e.getMessage().equals(liveReadFailure)) {
                    context.noticeHandler().accept("estimating live sources: " + e.getMessage() + "; the last "
                            + "estimate stays (told again only if this changes)");
                }
                liveReadFailure = e.getMessage();
            }
        } finally {
            ProcessSources.closeAll(fresh);
        }
    }

    private void failed(Source source, DaemonException e) {
        if (source instanceof Source.Pid pid && hasExited(pid.pid(), e)) {
            // Dropped only with the notice given: a throw on the way (an OutOfMemoryError making the
            // notice, growing the set, or from the handler) leaves it listed, for the next re-read to tell.
            String notice = source + ": the process has exited; dropped from the sources "
                    + "(a later process with its pid is another process)";
            try {
                exited.add(source);     // a HashSet links the entry before it grows: inside the try
                context.noticeHandler().accept(notice);
            } catch (RuntimeException | Error t) {
                exited.remove(source);     // allocates nothing
                throw t;
            }
            failing.remove(source);
        } else if (!e.getMessage().equals(failing.put(source, e.getMessage()))) {
            context.noticeHandler().accept("re-reading live sources: " + e.getMessage()
                    + " (told again only if this changes)");
        }
    }

    /** Reads {@code processes} once into digests and keeps the estimate, under the engine's knobs. */
    private void estimateLive(List<ProcessSource> processes) {
        liveEstimate = SourceEstimate.run(List.of(), processes, engine.knobs().maxPageSharing(),
                engine.knobs().useZeroPages());
    }

    /** Whether a pid source failed because its process is gone, not because it could not be read. */
    private static boolean hasExited(int pid, DaemonException e) {
        if (e.getCause() instanceof ProcessScanException p && (p.kind() == ProcessScanException.Kind.NO_SUCH_PROCESS
                || p.kind() == ProcessScanException.Kind.EXITED)) {
            return true;
        }
        return ProcessHandle.of(pid).map(process -> !process.isAlive()).orElse(true);
    }

    private void loadFiles(List<SourceFile> files) {
        List<Map<String, Object>> sketches = new ArrayList<>();
        try (Arena arena = Arena.ofConfined()) {
            SourceFile.ChunkBuffer buffer = SourceFile.ChunkBuffer.allocate(arena);
            for (SourceFile file : files) {
                Guest guest = engine.createGuest(domain(file.name()), file.name(), file.bytes());
                GuestSketch sketch = new GuestSketch();
                file.loadInto(guest, buffer, sketch);
                sketches.add(sketchRow(file.name(), sketch));
            }
        } catch (DedupException e) {
            throw failed(e);
        }
        fileSketches = List.copyOf(sketches);
    }

    /**
     * {@code /sketches}: each guest's placement sketch, the files' as loaded, then the live sources' from
     * the last estimate, as {@code samepage scan --json} writes them ({@code guests[].name},
     * {@code guests[].sketch}), so {@code samepage similar} reads it as it is.
     */
    String sketchesJson() {
        List<Map<String, Object>> guests = new ArrayList<>(fileSketches);
        SourceEstimate.Result live = liveEstimate;
        if (live != null) {
            for (PageDigestEstimator.GuestEstimate g : live.estimate().guests()) {
                guests.add(sketchRow(g.name(), g.sketch()));
            }
        }
        try {
            return JSON.writeValueAsString(Map.of("guests", guests)) + "\n";
        } catch (JsonProcessingException e) {
            throw new IllegalStateException("maps of plain values always serialize", e);
        }
    }

    private static Map<String, Object> sketchRow(String name, GuestSketch sketch) {
        Map<String, Object> row = new LinkedHashMap<>();
        row.put("name", name);
        row.put("sketch", sketch.fields());
        return row;
    }

    private MergeDomain domain(String source) {
        String name = context.domainPerSource() ? source : SHARED_DOMAIN;
        return domains.computeIfAbsent(name, engine::createDomain);
    }

    /**
     * A pool the sources do not fit at launch is a config the daemon cannot run, {@link Kind#CONFIG}: a
     * restart would fail the same way (the shipped unit restarts on anything but exit 2).
     */
    private static DaemonException poolTooSmall(Daemon.Context context, DaemonException e) {
        if (!(e.getCause() instanceof DedupException d) || d.kind() != DedupException.Kind.POOL_EXHAUSTED) {
            return e;
        }
        String pool = context.poolMib() != 0 ? "pool_mib=" + context.poolMib() : "the pool sized from the sources";
        return new DaemonException(Kind.CONFIG, pool + " is too small for the sources (" + d.getMessage()
                + "); raise pool_mib", e);
    }

    private static DaemonException failed(DedupException e) {
        return new DaemonException(Kind.FAILED, e.getMessage(), e);
    }

    /**
     * The engine's context with its pool: {@code poolMib}, or sized from the files (live sources need none;
     * with no file, the two frames an engine needs at least).
     */
    private static EngineContext engineContext(Daemon.Context context, List<SourceFile> files) {
        List<ProcessSource> processes = List.of();
        long poolBytes = context.poolMib() != 0 ? context.poolMib() << 20
                : Math.max(2L * Pages.PAGE_SIZE, PoolSize.defaultBytes(files, processes, context.domainPerSource()));
        try {
            return context.engineContext().poolBytes(poolBytes).conclude();
        } catch (DedupException e) {
            throw new DaemonException(Kind.CONFIG, (context.poolMib() != 0 ? "pool_mib " + context.poolMib()
                    : "the sources' " + PoolSize.sourceBytes(files, processes) + " bytes") + ": " + e.getMessage(), e);
        }
    }
}
