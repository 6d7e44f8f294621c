package io.samepage.core;

/**
 * Backs free frames with memory before they are written: the {@link FrameBacking} populates a run of
 * neighbouring frames with one call ({@link FrameBacking#populate}, {@code MADV_POPULATE_WRITE} for
 * anonymous memory) where writing each frame would take a page fault each, which on this project's
 * machine kind costs about 10 us a page (docs/perf/engine.md, "what a page fault costs here now").
 * Every call here is a hint: a backing that refuses or throws leaves the writes to fault the frames in,
 * and nothing else changes. Does nothing where the backing does not release memory (every frame is
 * resident there already).
 *
 * <p>Thread safety: safe from any thread; each call gathers its runs in its own {@link FrameRuns}.
 */
final class FramePopulation {

    /** The most runs one call populates at a time. */
    static final int RUNS = 64;
    /** The fewest frames worth a bulk populate: for fewer, the system call saves nothing. */
    static final int MIN_FRAMES = 16;

    private final FrameBacking backing;
    private final FrameTable table;
    private final boolean active;

    FramePopulation(FrameBacking backing, FrameTable table) {
        this.backing = backing;
        this.table = table;
        this.active = backing.releasesMemory();
    }

    /** Populates the frames of a chain linked through {@link FrameTable#next}, a call per run. */
    void chain(int chain) {
        if (!active) {
            return;
        }
        FrameRuns runs = new FrameRuns(RUNS);
        for (int frame = chain; frame != FrameTable.NO_FRAME; frame = table.next(frame)) {
            if (!runs.add(frame)) {
                if (!populated(runs)) {
                    return;
                }
                runs.add(frame);
            }
        }
        populated(runs);
    }

    /**
     * Populates the frames of {@code frames[0..count)}, as {@link FreeLists#take} returned them, that did
     * not come off the warm list (those are resident); nothing for fewer than {@value #MIN_FRAMES}.
     */
    void taken(int[] frames, int count) {
        if (!active || count < MIN_FRAMES) {
            return;
        }
        FrameRuns runs = new FrameRuns(RUNS);
        for (int i = 0; i < count; i++) {
            int frame = frames[i];
            if ((frame & FreeLists.WARM) == 0 && !runs.add(frame)) {
                if (!populated(runs)) {
                    return;
                }
                runs.add(frame);
            }
        }
        populated(runs);
    }

    /** Populates {@code runs} and clears them; false if the backing threw (populate no more). */
    private boolean populated(FrameRuns runs) {
        try {
            runs.populate(backing);
        } catch (RuntimeException refused) {
            return false;       // a hint: the writes fault the frames in
        }
        runs.clear();
        return true;
    }
}
