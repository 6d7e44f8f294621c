package io.samepage.core;

/**
 * The engine's counters, with Linux KSM's names and definitions (Documentation/admin-guide/mm/ksm.rst).
 * A snapshot: each value is read once, without stopping writers, so under concurrent change the
 * values may disagree by the few pages that moved while they were read.
 *
 * @param pagesShared      frames in the stable index, each duplicate of a chain counted
 * @param pagesSharing     guest pages mapping those frames beyond the first mapper of each
 * @param pagesUnshared    pages in the unstable index: unchanged since their last visit, no twin found
 * @param pagesVolatile    other tracked pages: changed since their last visit, or visited once
 * @param fullScans        completed passes over every guest page
 * @param pagesScanned     written (or merged) guest pages visited by the scanner
 * @param pagesSkipped     visits that {@code smart_scan} skipped
 * @param ksmZeroPages     pages mapped to the zero frame by {@code use_zero_pages}
 * @param stableNodeChains contents held by more than one stable frame (chains of duplicates), by bytes, not hash
 * @param stableNodeDups   frames of those contents
 * @param generalProfit    {@code (pagesSharing + ksmZeroPages) * 4096 - metadataBytes}
 * @param pagesTotal       guest pages of all live guests
 * @param metadataBytes    the engine's real metadata: per-frame and per-page arrays, index tables, locks
 * @param framesInUse      host frames allocated, zero frames included
 * @param frameReleaseFailures frames freed (or released in place) whose memory the frame backing failed to
 *                         give back to the operating system, each zeroed in place instead: resident, never
 *                         wrong ({@link FramePool#releaseFailures}); not KSM's
 * @param framesWithheld   frames kept in use for good because they could not be freed safely (a stable
 *                         frame's release cut short while it left the index, a frame whose memory faulted
 *                         when zeroed), never handed out again; counted in {@code framesInUse} too
 *                         ({@link FramePool#framesWithheld}); not KSM's
 */
public record EngineCounters(long pagesShared, long pagesSharing, long pagesUnshared, long pagesVolatile,
        long fullScans, long pagesScanned, long pagesSkipped, long ksmZeroPages, long stableNodeChains,
        long stableNodeDups, long generalProfit, long pagesTotal, long metadataBytes, long framesInUse,
        long frameReleaseFailures, long framesWithheld) {
}
