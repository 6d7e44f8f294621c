package io.samepage.core;

/**
 * What a full scan that changes something changes, for {@link Scanner#scanUntilStable}: equal before
 * and after a full scan, it changed nothing.
 */
record ScanOutcome(long pagesShared, long pagesSharing, long pagesUnshared, long pagesVolatile,
        long ksmZeroPages, long merges) {

    /**
     * The outcome shown by {@code c} and {@code merges}. With smart_scan a page left alone is skipped for
     * longer and longer, and counts as volatile while skipped, unshared when visited: pages skipped out of
     * step move between the two at every scan, for ever, though nothing changes. So then only their sum
     * counts (KSM's rmap items neither shared nor sharing).
     */
    static ScanOutcome of(EngineCounters c, boolean smartScan, long merges) {
        return new ScanOutcome(c.pagesShared(), c.pagesSharing(),
                smartScan ? c.pagesUnshared() + c.pagesVolatile() : c.pagesUnshared(), smartScan ? 0 : c.pagesVolatile(),
                c.ksmZeroPages(), merges);
    }
}
