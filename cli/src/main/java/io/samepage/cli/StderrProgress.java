package io.samepage.cli;

import io.samepage.linux.Terminals;
import io.samepage.image.BuildProgress;
import me.tongfei.progressbar.ProgressBar;
import me.tongfei.progressbar.ProgressBarBuilder;

/**
 * The progress of an index build or verification as a bar on stderr (progressbar), in MiB of the
 * image, when stderr is a terminal; nothing at all otherwise, so logs and pipes stay clean.
 *
 * <p>Confined to the thread that builds: {@link BuildProgress} reports on the caller's thread, and
 * the bar redraws itself on the library's own thread.
 */
final class StderrProgress implements BuildProgress, AutoCloseable {

    /** Blocks of 4 KiB per MiB: the bar counts blocks and shows MiB. */
    private static final int BLOCKS_PER_MIB = 256;

    private final String task;
    private final boolean shown;
    private ProgressBar bar;

    private StderrProgress(String task, boolean shown) {
        this.task = task;
        this.shown = shown;
    }

    /** A bar named {@code task} if stderr is a terminal, else a progress that reports nothing. */
    static StderrProgress start(String task) {
        return new StderrProgress(task, Terminals.stderrIsTerminal());
    }

    @Override
    public void update(long blocksDone, long blocksTotal) {
        if (!shown) {
            return;
        }
        if (bar == null) {
            bar = new ProgressBarBuilder()
                    .setTaskName(task)
                    .setInitialMax(blocksTotal)
                    .setUnit(" MiB", BLOCKS_PER_MIB)
                    .showSpeed()
                    .setUpdateIntervalMillis(200)
                    .build();
        }
        bar.maxHint(blocksTotal);
        bar.stepTo(blocksDone);
    }

    @Override
    public void close() {
        if (bar != null) {
            bar.close();
            bar = null;
        }
    }
}
