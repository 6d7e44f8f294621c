package io.samepage.cli;

import io.samepage.core.DedupEngine;

/**
 * Steps the engine's scanner in the caller's thread, one full scan at a time, until two full scans in
 * a row change nothing: the same {@code pages_shared}, {@code pages_sharing}, {@code pages_unshared},
 * {@code pages_volatile} and {@code ksm_zero_pages}, and no merge ({@code Scanner.merges()}).
 *
 * <p>Why two: KSM's volatility rule merges a page only on a visit that finds its hash unchanged since
 * the last one, so the first full scan only records hashes and changes no sharing counter; a page can
 * also wait one more scan for a busy twin. Two quiet scans in a row mean every page had its chance.
 * With static guests this takes four or five full scans; {@link #MAX_FULL_SCANS} bounds a guest whose
 * memory keeps changing.
 */
final class MergeUntilStable {

    /** Full scans after which the counters count as not settling: a failure, not a result. */
    static final int MAX_FULL_SCANS = 64;

    private MergeUntilStable() {
    }

    /**
     * Runs full scans until two in a row change nothing.
     *
     * @return the full scans this call ran
     * @throws CommandException (exit 1) if the counters still change after {@link #MAX_FULL_SCANS}
     */
    static int run(DedupEngine engine) {
        ScanSnapshot last = ScanSnapshot.of(engine);
        int quiet = 0;
        int scans = 0;
        while (quiet < 2) {
            if (scans == MAX_FULL_SCANS) {
                throw CommandException.failure("the counters still changed after " + MAX_FULL_SCANS
                        + " full scans; is a guest's memory changing while it is scanned?");
            }
            engine.scanner().scanFullPass();
            scans++;
            ScanSnapshot now = ScanSnapshot.of(engine);
            quiet = now.equals(last) ? quiet + 1 : 0;
            last = now;
        }
        return scans;
    }
}
