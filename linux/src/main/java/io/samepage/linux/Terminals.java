package io.samepage.linux;

/**
 * Whether a standard stream is a terminal: libc's {@code isatty} through FFM. See the package
 * documentation for why the call is safe.
 *
 * <p>Thread safe.
 */
public final class Terminals {

    private static final int STDERR = 2;

    private Terminals() {
    }

    /** True if standard error (file descriptor 2) is a terminal. */
    public static boolean stderrIsTerminal() {
        // Unbound where the C library has no isatty, no native linker exists, or native access is denied.
        if (!Libc.bound("isatty")) {
            return System.console() != null;
        }
        try {
            // Safe: an int in, an int out; no memory is shared with the callee.
            return Libc.isatty(STDERR) == 1;
        } catch (IllegalStateException e) {
            return System.console() != null;
        }
    }
}
