package io.samepage.daemon;

import io.samepage.core.DedupEngine;
import io.samepage.core.DedupException;
import io.samepage.core.EngineContext;
import io.samepage.core.EngineCounters;
import io.samepage.core.Guest;
import io.samepage.core.GuestCounters;
import io.samepage.core.MergeDomain;
import io.samepage.core.Scanner;
import io.samepage.host.GuestSketch;
import java.lang.foreign.Arena;
import java.util.ArrayList;
import java.util.List;

/**
 * One scan of files to a stable state, the work of {@code samepage scan FILE...}: a fresh engine, one
 * guest per file (as {@link SourceFile} loads it), scanned until two full scans change nothing
 * ({@link Scanner#scanUntilStable}), then closed. The daemon loads files the same way but keeps
 * scanning ({@link Daemon}); a scan with live sources is estimated instead ({@link SourceEstimate}).
 */
public final class SourceScan {

    /**
     * What a scan found.
     *
     * @param counters     the engine's counters once stable
     * @param guests       each guest's counters, in source order
     * @param domains      merge domains used
     * @param fullScans    full scans until stable
     * @param pagesWritten guest pages loaded (file chunks that were all zeros are not)
     * @param sketches     each file's {@link GuestSketch}, in order
     */
    public record Result(EngineCounters counters, List<GuestCounters> guests, int domains, int fullScans,
                         long pagesWritten, List<GuestSketch> sketches) {
    }

    /** Turns a load the pool could not hold into the caller's error. */
    @FunctionalInterface
    public interface LoadFailure {
        RuntimeException of(DedupException cause);
    }

    private SourceScan() {
    }

    /**
     * Loads every source into an engine built from {@code context}, each in a merge domain of its own
     * with {@code domainPerSource}, else all in one, and scans until stable.
     *
     * @throws DedupException if the engine cannot settle or refuses an operation; a load the pool cannot
     *                        hold throws what {@code onLoadFailure} makes of it. The engine is closed
     *                        either way.
     */
    public static Result run(EngineContext context, List<SourceFile> files, boolean domainPerSource,
                             LoadFailure onLoadFailure) {
        try (DedupEngine engine = DedupEngine.create(context); Arena arena = Arena.ofConfined()) {
            SourceFile.ChunkBuffer buffer = SourceFile.ChunkBuffer.allocate(arena);
            MergeDomain shared = domainPerSource ? null : engine.createDomain("shared");
            long written = 0;
            List<GuestSketch> sketches = new ArrayList<>();
            for (SourceFile file : files) {
                Guest guest = engine.createGuest(shared != null ? shared : engine.createDomain(file.name()),
                        file.name(), file.bytes());
                try {
                    GuestSketch sketch = new GuestSketch();
                    written += file.loadInto(guest, buffer, sketch);
                    sketches.add(sketch);
                } catch (DedupException e) {
                    throw onLoadFailure.of(e);
                }
            }
            int scans = engine.scanner().scanUntilStable(Scanner.DEFAULT_MAX_FULL_SCANS_TO_SETTLE);
            List<GuestCounters> guests = new ArrayList<>();
            for (Guest guest : engine.guests()) {
                guests.add(guest.counters());
            }
            return new Result(engine.counters(), List.copyOf(guests), engine.domains().size(), scans, written,
                    List.copyOf(sketches));
        }
    }
}
