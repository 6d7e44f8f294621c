package io.samepage.density;

import java.util.ArrayList;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;

/**
 * Everything one density run measured: the inputs, each mode's result at each N, and why a mode did
 * not run. Filled by {@link DensitySuite}, read by the report, the chart and the checks. Not thread safe.
 */
public final class DensityResults {

    private final PageMix content;
    private final int[] guestCounts;
    private final long budgetMib;
    private final long ksmTimeoutSeconds;
    private final Map<Mode, List<ModeResult>> byMode = new EnumMap<>(Mode.class);
    private final Map<Mode, String> notes = new EnumMap<>(Mode.class);
    private final Map<Mode, List<ModeResult>> reruns = new EnumMap<>(Mode.class);
    private final Map<Mode, List<String>> rerunNotes = new EnumMap<>(Mode.class);
    private final List<MergeFloor> floors = new ArrayList<>();
    private final List<String> floorNotes = new ArrayList<>();
    private double indexBuildSeconds = Double.NaN;
    private long distinctImagePages = -1;
    private double wallSeconds;

    DensityResults(PageMix content, int[] guestCounts, long budgetMib, long ksmTimeoutSeconds) {
        this.content = content;
        this.guestCounts = guestCounts.clone();
        this.budgetMib = budgetMib;
        this.ksmTimeoutSeconds = ksmTimeoutSeconds;
        for (Mode mode : Mode.values()) {
            byMode.put(mode, new ArrayList<>());
            reruns.put(mode, new ArrayList<>());
            rerunNotes.put(mode, new ArrayList<>());
        }
    }

    void add(ModeResult result) {
        byMode.get(result.mode()).add(result);
    }

    /**
     * A further run of a timed mode at the largest N, for the medians the (b)-(d) claims compare
     * ({@link TimedRuns}); the tables and the chart show the first run only.
     */
    void addRerun(ModeResult result, int run) {
        if (result.guests() != largestGuests()) {
            throw new IllegalArgumentException("a rerun is at the largest N, " + largestGuests() + ", not " + result.guests());
        }
        reruns.get(result.mode()).add(result);
        if (result.note() != null) {
            rerunNotes.get(result.mode()).add("run " + run + ": " + result.note());
        }
    }

    /** A further run of {@code mode} that failed: left out of the medians, and said so in the report. */
    void rerunFailed(Mode mode, int run, String message) {
        rerunNotes.get(mode).add("run " + run + " failed, so it is left out of the medians: " + message);
    }

    /** What the report must say of the reruns of {@code mode}: their notes and failures, by run. */
    List<String> rerunNotes(Mode mode) {
        return List.copyOf(rerunNotes.get(mode));
    }

    /** Every run of {@code mode} at the largest N: the one in the tables first, then the reruns; maybe none. */
    List<ModeResult> runsAtLargest(Mode mode) {
        List<ModeResult> runs = new ArrayList<>();
        ModeResult first = at(mode, largestGuests());
        if (first != null) {
            runs.add(first);
            runs.addAll(reruns.get(mode));
        }
        return runs;
    }

    /** A run of the merge floor at the largest N, beside a run of (b) ({@link MergeFloor}). */
    void addFloor(MergeFloor floor) {
        floors.add(floor);
    }

    /** Why the merge floor has no run, or why one failed, for the report; a note given again is kept once. */
    void floorNote(String note) {
        if (!floorNotes.contains(note)) {
            floorNotes.add(note);
        }
    }

    /** The merge floor's runs at the largest N; maybe none. */
    List<MergeFloor> floors() {
        return List.copyOf(floors);
    }

    List<String> floorNotes() {
        return List.copyOf(floorNotes);
    }

    /** Why {@code mode} did not run (at some or every N), for the report. */
    void note(Mode mode, String note) {
        notes.put(mode, note);
    }

    void indexBuildSeconds(double seconds) {
        indexBuildSeconds = seconds;
    }

    void distinctImagePages(long pages) {
        distinctImagePages = pages;
    }

    void wallSeconds(double seconds) {
        wallSeconds = seconds;
    }

    PageMix content() {
        return content;
    }

    int[] guestCounts() {
        return guestCounts.clone();
    }

    int largestGuests() {
        return guestCounts[guestCounts.length - 1];
    }

    long budgetMib() {
        return budgetMib;
    }

    long ksmTimeoutSeconds() {
        return ksmTimeoutSeconds;
    }

    double indexBuildSeconds() {
        return indexBuildSeconds;
    }

    long distinctImagePages() {
        return distinctImagePages;
    }

    double wallSeconds() {
        return wallSeconds;
    }

    /** The mode's results in increasing N; skipped ones included. */
    List<ModeResult> results(Mode mode) {
        return List.copyOf(byMode.get(mode));
    }

    /** The mode's result at {@code n}, or null if it has none there. */
    ModeResult at(Mode mode, int n) {
        for (ModeResult r : byMode.get(mode)) {
            if (r.guests() == n) {
                return r;
            }
        }
        return null;
    }

    String note(Mode mode) {
        return notes.get(mode);
    }

    /**
     * Guests of {@code mode} that fit in the budget ({@link Fit}); none for a mode measured at one N of
     * several (KSM at its defaults), whose line would have to go through the origin.
     */
    Fit fit(Mode mode) {
        long ran = byMode.get(mode).stream().filter(ModeResult::ran).count();
        if (ran < 2 && guestCounts.length >= 2) {
            return new Fit(Double.NaN, Double.NaN, -1, 0);
        }
        return Fit.of(byMode.get(mode), budgetMib << 20);
    }
}
