package io.samepage.linux;

import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.util.Optional;

/**
 * Whether a standard stream is a terminal: libc's {@code isatty} through FFM. See the package
 * documentation for why the call is safe.
 *
 * <p>Thread safe.
 */
// Restricted FFM methods are this package's purpose; the call site says why it is safe.
@SuppressWarnings("restricted")
public final class Terminals {

    private static final int STDERR = 2;

    /** {@code int isatty(int fd)}, or null where libc has none or native access is denied. */
    private static final MethodHandle ISATTY = link();

    private Terminals() {
    }

    private static MethodHandle link() {
        try {
            Linker linker = Linker.nativeLinker();
            Optional<java.lang.foreign.MemorySegment> isatty = linker.defaultLookup().find("isatty");
            return isatty.map(symbol -> linker.downcallHandle(symbol,
                    FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_INT))).orElse(null);
        } catch (RuntimeException | Error unavailable) {
            // No native linker on this platform, or native access denied: use the fallback.
            return null;
        }
    }

    /** True if standard error (file descriptor 2) is a terminal. */
    public static boolean stderrIsTerminal() {
        if (ISATTY == null) {
            return System.console() != null;
        }
        try {
            // Safe: an int in, an int out; no memory is shared with the callee.
            return (int) ISATTY.invokeExact(STDERR) == 1;
        } catch (Throwable t) {
            return System.console() != null;
        }
    }
}
