package io.samepage.image;

/** Progress of an index build or verification, reported on the thread that called it. */
@FunctionalInterface
public interface BuildProgress {

    /** Reports nothing. */
    BuildProgress NONE = (done, total) -> { };

    /** Called about ten times a second, and once at the end with {@code done == total}. */
    void update(long blocksDone, long blocksTotal);
}
