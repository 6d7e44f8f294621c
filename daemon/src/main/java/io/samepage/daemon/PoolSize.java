package io.samepage.daemon;

import io.samepage.hashing.Pages;
import java.util.List;

/**
 * The frame pool a set of sources needs when no size is given, for the daemon and {@code samepage scan}
 * alike: every file's bytes, each live process's resident bytes plus an eighth and 16 MiB of slack (it
 * may grow while it is read), and one zero frame per merge domain.
 */
public final class PoolSize {

    private PoolSize() {
    }

    /** The default pool for these sources, in bytes: {@link #sourceBytes} and the domains' zero frames. */
    public static long defaultBytes(List<SourceFile> files, List<ProcessSource> processes, boolean domainPerSource) {
        long zeroFrames = domainPerSource ? files.size() + processes.size() : 1;
        return sourceBytes(files, processes) + zeroFrames * Pages.PAGE_SIZE;
    }

    /** The sources' bytes as {@link #defaultBytes} counts them, without the zero frames. */
    public static long sourceBytes(List<SourceFile> files, List<ProcessSource> processes) {
        long totalBytes = 0;
        for (SourceFile file : files) {
            totalBytes += file.bytes();
        }
        long residentBytes = 0;
        for (ProcessSource process : processes) {
            residentBytes += process.residentPages() * Pages.PAGE_SIZE;
        }
        if (!processes.isEmpty()) {
            totalBytes += residentBytes + residentBytes / 8 + (16L << 20);
        }
        return totalBytes;
    }
}
