package io.samepage.daemon;

import io.samepage.core.DedupEngine;
import io.samepage.core.DedupException;
import io.samepage.core.EngineContext;
import io.samepage.core.Guest;
import io.samepage.core.MergeDomain;
import io.samepage.daemon.DaemonException.Kind;
import io.samepage.host.KernelKsm;
import java.lang.foreign.Arena;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

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

    private DaemonGuests(DedupEngine engine, Daemon.Context context) {
        this.engine = engine;
        this.context = context;
    }

    /**
     * Checks every file and opens every live source before any is read, builds the engine with a pool
     * for them, and loads each into its guest. The live sources are closed again once read.
     *
     * @throws DaemonException {@link Kind#SOURCE} for a source that cannot be used, {@link Kind#CONFIG} for a
     *                         pool too small or too large, {@link Kind#FAILED} if loading fails; the engine
     *                         is closed again then
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
     * Rebuilds every live source's guest from a fresh read. Each source is re-opened on its own: one
     * that is gone (or, for {@code qemu}, finds no guest) is dropped with a notice, the others stay, and
     * it comes back when it can be read again.
     */
    void refreshLive() {
        for (Guest guest : liveGuests) {
            guest.destroy();
        }
        liveGuests.clear();
        for (Source source : context.sources()) {
            if (source instanceof Source.File) {
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
            } catch (DaemonException e) {
                context.noticeHandler().accept("re-reading live sources: " + e.getMessage());
            }
        }
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
