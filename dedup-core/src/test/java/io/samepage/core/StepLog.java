package io.samepage.core;

import java.util.ArrayDeque;

/**
 * What one seed of a randomized run did last, for its failure messages: the step it is at and the
 * last {@value #KEPT} steps noted, each with its step number.
 */
public final class StepLog {

    private static final int KEPT = 12;

    private final long seed;
    private final ArrayDeque<String> recent = new ArrayDeque<>();
    private int step;

    public StepLog(long seed) {
        this.seed = seed;
    }

    /** The run is at step {@code step} (0 before the first). */
    public void at(int step) {
        this.step = step;
    }

    /** Notes what the current step does. */
    public void note(String what) {
        if (recent.size() == KEPT) {
            recent.removeFirst();
        }
        recent.addLast(step + ": " + what);
    }

    /** "seed S, step N (what was noted last)": where an assertion failed. */
    public String where() {
        return "seed " + seed + ", step " + step + " (" + (recent.isEmpty() ? "" : recent.getLast()) + ")";
    }

    /** The error that ends the run on {@code cause}: the seed, the step, how to replay it, the last steps. */
    public AssertionError failed(Throwable cause) {
        return new AssertionError("seed " + seed + " failed at step " + step + "; replay with -Dsamepage.seed=" + seed
                + "; last steps: " + String.join(" | ", recent), cause);
    }
}
