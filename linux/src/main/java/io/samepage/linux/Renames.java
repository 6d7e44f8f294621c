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
         * the kernel has none ({@code EINVAL}, {@code ENOSYS}).
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
     * @throws IOException for any other failure, with its errno (two filesystems: {@code EXDEV} 18)
     */
    public static Exchange exchange(Path a, Path b) throws IOException {
        if (UNAVAILABLE != null) {
            return Exchange.UNSUPPORTED;
        }
        int result;
        try (Arena arena = Arena.ofConfined()) {
            // Safe: NUL-terminated copies of both paths, alive for the call; the kernel only reads them.
            result = Libc.renameat2(arena.allocateFrom(a.toString()), arena.allocateFrom(b.toString()), RENAME_EXCHANGE);
        }
        return switch (-result) {
            case 0 -> Exchange.DONE;
            case Abi.ENOENT -> Exchange.MISSING;
            case Abi.EINVAL, Abi.ENOSYS -> Exchange.UNSUPPORTED;
            default -> throw new IOException("renameat2(" + a + ", " + b + ", RENAME_EXCHANGE): errno " + -result);
        };
    }
}
