package io.samepage.testing;

import java.io.IOException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * What reading another process's memory may leave behind, for tests that make such a read fail part way
 * (the allocation fault scenarios of host mode and the daemon): descriptors of this process still open on
 * the target's {@code /proc/PID} files or on a pidfd, and any change to the target's mappings or their
 * flags. Reads {@code /proc}; never touches the target.
 *
 * <p>A leaked {@code FileChannel} is closed by its cleaner once a collection finds it unreachable, so a
 * leak is seen only if the descriptors are read right after the step that leaked, and a run is begun from
 * {@link #settledDescriptorsOn} so that an earlier leak closed meanwhile does not hide a new one.
 */
public final class ReadTarget {

    private static final long SETTLE_NANOS = 2_000_000_000L;

    private ReadTarget() {
    }

    /**
     * The targets of this process's descriptors open on a file of {@code /proc/PID} (its {@code pagemap},
     * its {@code mem}) or on a pidfd ({@code anon_inode:[pidfd]}), one each, sorted.
     */
    public static List<String> descriptorsOn(long pid) throws IOException {
        String prefix = "/proc/" + pid + "/";
        List<String> on = new ArrayList<>();
        try (DirectoryStream<Path> fds = Files.newDirectoryStream(Path.of("/proc/self/fd"))) {
            for (Path fd : fds) {
                try {
                    String target = Files.readSymbolicLink(fd).toString();
                    if (target.startsWith(prefix) || target.equals("anon_inode:[pidfd]")) {
                        on.add(target);
                    }
                } catch (IOException gone) {
                    // closed since the listing
                }
            }
        }
        on.sort(null);
        return on;
    }

    /**
     * {@link #descriptorsOn}, once none is open on a {@code /proc/PID} file (after a collection, whose
     * cleaners close the channels an earlier run leaked) or two seconds have passed.
     */
    public static List<String> settledDescriptorsOn(long pid) throws IOException, InterruptedException {
        List<String> open = descriptorsOn(pid);
        long start = System.nanoTime();
        if (onProcFiles(open)) {
            System.gc();
        }
        while (onProcFiles(open) && System.nanoTime() - start < SETTLE_NANOS) {
            Thread.sleep(5);
            open = descriptorsOn(pid);
        }
        return open;
    }

    /**
     * The descriptors of {@code now} that {@code before} does not hold, one each: a step that leaks what an
     * earlier one leaked counts too.
     */
    public static List<String> opened(List<String> before, List<String> now) {
        List<String> opened = new ArrayList<>(now);
        before.forEach(opened::remove);
        return opened;
    }

    /**
     * What a reader could change in process {@code pid}'s memory: its mappings ({@code /proc/PID/maps})
     * and each one's flags ({@code VmFlags} of {@code /proc/PID/smaps}, where {@code MADV_MERGEABLE} shows
     * as {@code mg}), one line each.
     */
    public static List<String> memoryLayout(long pid) throws IOException {
        List<String> layout = new ArrayList<>(Files.readAllLines(Path.of("/proc/" + pid + "/maps")));
        for (String line : Files.readAllLines(Path.of("/proc/" + pid + "/smaps"))) {
            if (line.startsWith("VmFlags:")) {
                layout.add(line);
            }
        }
        return layout;
    }

    private static boolean onProcFiles(List<String> descriptors) {
        return descriptors.stream().anyMatch(d -> d.startsWith("/proc/"));
    }
}
