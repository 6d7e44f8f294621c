package io.samepage.linux;

import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;

/**
 * The kernel's clock ticks per second ({@code sysconf(_SC_CLK_TCK)}), the unit of the CPU times in
 * {@code /proc/PID/stat}. Thread safe.
 */
// Restricted FFM methods are this package's purpose; the call site says why it is safe.
@SuppressWarnings("restricted")
public final class ClockTicks {

    /** {@code _SC_CLK_TCK} in glibc's and musl's {@code unistd.h} (Linux). */
    private static final int SC_CLK_TCK = 2;
    /** USER_HZ on every Linux architecture the JDK runs on, where sysconf cannot be called. */
    private static final long LINUX_USER_HZ = 100;

    private ClockTicks() {
    }

    /** Ticks per second of {@code utime} and {@code stime} in {@code /proc/PID/stat}. */
    public static long perSecond() {
        try {
            Linker linker = Linker.nativeLinker();
            MethodHandle sysconf = linker.downcallHandle(linker.defaultLookup().find("sysconf").orElseThrow(),
                    FunctionDescriptor.of(ValueLayout.JAVA_LONG, ValueLayout.JAVA_INT));
            // Safe: an int in, a long out; no memory crosses the boundary.
            long ticks = (long) sysconf.invokeExact(SC_CLK_TCK);
            return ticks > 0 ? ticks : LINUX_USER_HZ;
        } catch (Throwable unavailable) {
            return LINUX_USER_HZ;
        }
    }
}
