package io.samepage.cli;

import io.samepage.core.DedupEngine;
import io.samepage.core.EngineCounters;

/**
 * What a full scan that changes something changes: {@code pages_shared}, {@code pages_sharing},
 * {@code pages_unshared}, {@code pages_volatile}, {@code ksm_zero_pages} and the scanner's merge count.
 * Two equal snapshots around a full scan mean it changed nothing ({@link MergeUntilStable}, and the
 * density suite's own stepping).
 */
public record ScanSnapshot(long pagesShared, long pagesSharing, long pagesUnshared, long pagesVolatile,
        long ksmZeroPages, long merges) {

    /** The engine's counters now. */
    public static ScanSnapshot of(DedupEngine engine) {
        EngineCounters c = engine.counters();
        return new ScanSnapshot(c.pagesShared(), c.pagesSharing(), c.pagesUnshared(), c.pagesVolatile(),
                c.ksmZeroPages(), engine.scanner().merges());
    }
}
