package io.samepage.testing;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;

/**
 * Starts {@code sleep SECONDS} and returns once it sleeps: its program is loaded and it waits in the
 * kernel. {@link ProcessBuilder#start()} returns at the {@code exec}, while the dynamic loader may
 * still be mapping the C library; a test that reads the process's memory at once could see a process
 * of a few dozen pages and none of the libraries' (CI saw 99 pages, none file-backed).
 */
public final class SleepingProcess {

    private static final long WAIT_SECONDS = 10;

    private SleepingProcess() {}

    /** A {@code sleep} with its standard streams on {@code /dev/null}: it holds no pipes of this JVM. */
    public static Process start(int seconds) throws IOException, InterruptedException {
        Process process = new ProcessBuilder("sleep", Integer.toString(seconds))
                .redirectInput(ProcessBuilder.Redirect.from(new java.io.File("/dev/null")))
                .redirectOutput(ProcessBuilder.Redirect.DISCARD)
                .redirectError(ProcessBuilder.Redirect.DISCARD)
                .start();
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(WAIT_SECONDS);
        while (!sleeping(process.pid())) {
            if (!process.isAlive() || System.nanoTime() - deadline > 0) {
                process.destroyForcibly();
                throw new IllegalStateException("sleep (pid " + process.pid() + ") did not settle into its sleep in "
                        + WAIT_SECONDS + " s");
            }
            Thread.sleep(5);
        }
        return process;
    }

    /**
     * True once the process runs {@code sleep} (not the launcher that execs it) and is in an
     * interruptible sleep ({@code S}), the state of {@code clock_nanosleep}; loading the program
     * runs ({@code R}) or waits on its reads ({@code D}).
     */
    static boolean sleeping(long pid) throws IOException {
        String stat;
        try {
            stat = Files.readString(Path.of("/proc/" + pid + "/stat"));
        } catch (NoSuchFileException e) {
            return false;
        }
        int close = stat.lastIndexOf(')');
        String comm = stat.substring(stat.indexOf('(') + 1, close);
        return comm.equals("sleep") && stat.charAt(close + 2) == 'S';
    }
}
