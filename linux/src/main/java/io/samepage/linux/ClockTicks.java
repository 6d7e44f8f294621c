package io.samepage.linux;

/**
 * The kernel's clock ticks per second ({@code sysconf(_SC_CLK_TCK)}), the unit of the CPU times in
 * {@code /proc/PID/stat}. Thread safe.
 */
public final class ClockTicks {

    /** USER_HZ on every Linux architecture the JDK runs on, where sysconf cannot be called. */
    private static final long LINUX_USER_HZ = 100;

    private ClockTicks() {
    }

    /** Ticks per second of {@code utime} and {@code stime} in {@code /proc/PID/stat}. */
    public static long perSecond() {
        if (!Libc.bound("sysconf")) {
            return LINUX_USER_HZ;
        }
        // Safe: an int in, a long out; no memory crosses the boundary.
        long ticks = Libc.sysconf(Abi.SC_CLK_TCK);
        return ticks > 0 ? ticks : LINUX_USER_HZ;
    }
}
