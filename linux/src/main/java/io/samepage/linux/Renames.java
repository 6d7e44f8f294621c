package io.samepage.linux;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.nio.file.Path;

/**
 * The one rename the JDK lacks: {@code renameat2(RENAME_EXCHANGE)}, which swaps two names in one step,
 * each then naming what the other named (Linux 3.15, on ext4, XFS, Btrfs and tmpfs among others; glibc
 * 2.28). The JDK's atomic move is {@code rename(2)}, which replaces whatever is at the target at that
 * instant, so a check of the target before it can be outrun by a rename in between. With an exchange the
 * caller replaces first and then looks at what it replaced, now under the caller's own name, where no
 * one else renames: if it must not have been replaced, a second exchange puts it back, unchanged.
 *
 * <h2>Why the call is safe</h2>
 * Both paths are passed as NUL-terminated copies in a confined arena that outlives the call; the kernel
 * only reads them. No descriptor and no memory of the caller's is involved.
 *
 * <p>Stateless and thread safe.
 */
// Restricted FFM methods are this package's purpose; the call site says why it is safe.
@SuppressWarnings("restricted")
public final class Renames {

    /** {@code RENAME_EXCHANGE} of {@code <linux/fs.h>}. */
    private static final int RENAME_EXCHANGE = 2;

    /** Null if {@code renameat2} is bound here, else why not. */
    private static final String UNAVAILABLE = Libc.unavailable("atomic exchange of two paths", "renameat2");

    /** What {@link #exchange} did. */
    public enum Exchange {
        /** The two names were swapped. */
        DONE,
        /** Nothing changed: one of the two paths does not exist ({@code ENOENT}). */
        MISSING,
        /**
         * Nothing changed: no exchange here, as {@link #unavailableReason()} says, or the filesystem or
         * the kernel has none ({@code EINVAL}, {@code ENOSYS}), or it is not allowed ({@code EPERM}: a
         * sandbox's system call filter, or a file system's rule that a plain rename meets too).
         */
        UNSUPPORTED
    }

    private Renames() {
    }

    /** Null if {@link #exchange} can be called here, else why not. */
    public static String unavailableReason() {
        return UNAVAILABLE;
    }

    /**
     * Swaps {@code a} and {@code b} atomically: a reader of either path finds what it named before or
     * what the other named, never nothing. Both must exist, on one filesystem; either may be a directory.
     *
     * @throws IOException for any other failure, in the system's words where it is a usual one
     *                     ({@code EXDEV}: two filesystems), else with its errno
     */
    public static Exchange exchange(Path a, Path b) throws IOException {
        if (UNAVAILABLE != null) {
            return Exchange.UNSUPPORTED;
        }
        int result;
        try (Arena arena = Arena.ofConfined()) {
            // Safe: NUL-terminated copies of both paths, alive for the call; the kernel only reads them.
            result = Libc.renameat2(arena.allocateFrom(a.toString(), PATH_ENCODING),
                    arena.allocateFrom(b.toString(), PATH_ENCODING), RENAME_EXCHANGE);
        }
        return switch (-result) {
            case 0 -> Exchange.DONE;
            case Abi.ENOENT -> Exchange.MISSING;
            // EPERM too: a sandbox's filter that denies the call says so, where plain rename may be allowed; a
            // rename the file system forbids fails again there, with the JDK's words for it.
            case Abi.EINVAL, Abi.ENOSYS, Abi.EPERM -> Exchange.UNSUPPORTED;
            default -> throw new IOException(a + " and " + b + " could not be exchanged: " + reason(-result));
        };
    }

    /**
     * How the JDK encodes a path for the system ({@code sun.jnu.encoding}: the locale's, at startup): a
     * path passed in another encoding names another file, or none, where it is not ASCII.
     */
    private static final java.nio.charset.Charset PATH_ENCODING = pathEncoding();

    private static java.nio.charset.Charset pathEncoding() {
        try {
            return java.nio.charset.Charset.forName(System.getProperty("sun.jnu.encoding", "UTF-8"));
        } catch (IllegalArgumentException unknown) {
            return java.nio.charset.StandardCharsets.UTF_8;
        }
    }

    /** The system's words for the errors a rename of two sibling files meets, else the number. */
    private static String reason(int errno) {
        return switch (errno) {
            case 13 -> "permission denied";
            case 16 -> "device or resource busy";
            case 18 -> "invalid cross-device link";
            case 28 -> "no space left on device";
            case 30 -> "read-only file system";
            default -> "errno " + errno;
        };
    }
}
