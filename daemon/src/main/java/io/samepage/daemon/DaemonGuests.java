package io.samepage.daemon;

import io.samepage.core.DedupEngine;
import io.samepage.core.DedupException;
import io.samepage.core.EngineContext;
import io.samepage.core.Guest;
import io.samepage.core.MergeDomain;
import io.samepage.daemon.DaemonException.Kind;
import io.samepage.host.KernelKsm;
import io.samepage.host.ProcessScanException;
import java.lang.foreign.Arena;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * The daemon's engine and its guests, one per source. Files are loaded once, as {@code samepage scan}
 * loads them ({@link SourceFile}); live sources are read as {@code scan --pid} reads them
 * ({@link ProcessSource}) and rebuilt from a fresh read by {@link #refreshLive()}. With
 * {@code domainPerSource} each source has a merge domain of its own, else all share one.
 *
 * <p>Not thread safe: {@link #load} runs on the launching thread, then {@link #refreshLive()} on the
 * publisher's only. The engine itself is safe to scan meanwhile.
 */
final class DaemonGuests {

    private static final String SHARED_DOMAIN = "shared";

    private final DedupEngine engine;
    private final Daemon.Context context;
    private final Map<String, MergeDomain> domains = new HashMap<>();
    private final List<Guest> liveGuests = new ArrayList<>();
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
     * for them, and loads each into its guest. The live sources are closed again once read.
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
                engine = DedupEngine.create(engineContext(context, files, processes));
            } catch (DedupException e) {
                throw failed(e);
            }
            try {
                DaemonGuests guests = new DaemonGuests(engine, context);
                guests.loadFiles(files);
                guests.loadLive(processes);
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
     * Rebuilds every live source's guest from a fresh read. Each source is re-opened on its own: one that
     * cannot be read (or, for {@code qemu}, finds no guest) is left out with a notice, the others stay,
     * and it comes back when it can be read again. A notice is given once per change of state, not at
     * every re-read: when a source first fails (or fails otherwise), and when it is read again. A
     * {@code pid:} source whose process has exited is dropped for good, with one notice: a process that
     * later has its pid is another process.
     */
    void refreshLive() {
        for (Guest guest : liveGuests) {
            guest.destroy();
        }
        liveGuests.clear();
        for (Source source : context.sources()) {
            if (source instanceof Source.File || exited.contains(source)) {
                continue;
            }
            try {
                List<ProcessSource> fresh = source instanceof Source.Pid pid
                        ? ProcessSources.open(List.of(pid.pid()), false, context.noticeHandler())
                        : ProcessSources.open(List.of(), true, context.noticeHandler());
                try {
                    loadLive(fresh);
                } finally {
                    ProcessSources.closeAll(fresh);
                }
                if (failing.remove(source) != null) {
                    context.noticeHandler().accept(source + ": read again");
                }
            } catch (DaemonException e) {
                if (source instanceof Source.Pid pid && hasExited(pid.pid(), e)) {
                    exited.add(source);
                    failing.remove(source);
                    context.noticeHandler().accept(source + ": the process has exited; dropped from the sources "
                            + "(a later process with its pid is another process)");
                } else if (!e.getMessage().equals(failing.put(source, e.getMessage()))) {
                    context.noticeHandler().accept("re-reading live sources: " + e.getMessage()
                            + " (told again only if this changes)");
                }
            }
        }
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
        try (Arena arena = Arena.ofConfined()) {
            SourceFile.ChunkBuffer buffer = SourceFile.ChunkBuffer.allocate(arena);
            for (SourceFile file : files) {
                Guest guest = engine.createGuest(domain(file.name()), file.name(), file.bytes());
                file.loadInto(guest, buffer);
            }
        } catch (DedupException e) {
            throw failed(e);
        }
    }

    private void loadLive(List<ProcessSource> processes) {
        KernelKsm kernelKsm = KernelKsm.system();
        try {
            for (ProcessSource process : processes) {
                Guest guest = engine.createGuest(domain(process.name()), process.name(), process.bytes());
                liveGuests.add(guest);
                process.loadInto(guest, kernelKsm);
            }
        } catch (DedupException e) {
            throw failed(e);
        }
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

    /** The engine's context with its pool: {@code poolMib}, or sized from the sources. */
    private static EngineContext engineContext(Daemon.Context context, List<SourceFile> files,
            List<ProcessSource> processes) {
        long poolBytes = context.poolMib() != 0 ? context.poolMib() << 20
                : PoolSize.defaultBytes(files, processes, context.domainPerSource());
        try {
            return context.engineContext().poolBytes(poolBytes).conclude();
        } catch (DedupException e) {
            throw new DaemonException(Kind.CONFIG, (context.poolMib() != 0 ? "pool_mib " + context.poolMib()
                    : "the sources' " + PoolSize.sourceBytes(files, processes) + " bytes") + ": " + e.getMessage(), e);
        }
    }
}
