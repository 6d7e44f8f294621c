package io.samepage.image;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermission;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.Set;

/**
 * The mode {@link ImageIndex#writeTo} gives an index file. The file is written to a temporary file,
 * which the JDK creates with mode 0600, and renamed over its name; without this, every rewrite would
 * leave the index readable by its owner alone. So it gets the mode of the file it replaces, and a new
 * file gets 0666 less this process's umask, as any file created in its directory gets. The JDK has no
 * call that reads the umask, and setting it to read it is not thread safe, so it is read from the
 * {@code Umask:} line of /proc/self/status.
 */
final class FileModes {

    /** The umask where the kernel does not show it: group and others may not write. */
    private static final int USUAL_UMASK = 022;

    private FileModes() {
    }

    /** The mode for an index written to {@code file}: the existing regular file's, else {@link #newFile()}. */
    static Set<PosixFilePermission> forWriting(Path file) {
        try {
            return Files.isRegularFile(file) ? Files.getPosixFilePermissions(file) : newFile();
        } catch (IOException e) {
            return newFile();
        }
    }

    /** 0666 less this process's umask, or less {@value #USUAL_UMASK} where /proc does not show it. */
    static Set<PosixFilePermission> newFile() {
        int umask = USUAL_UMASK;
        try {
            // Latin-1: the Name line is the process's name, bytes that need not be UTF-8 (strictly decoded,
            // it failed the read, and the usual umask was taken in place of this process's).
            for (String line : Files.readAllLines(Path.of("/proc/self/status"), java.nio.charset.StandardCharsets.ISO_8859_1)) {
                if (line.startsWith("Umask:")) {
                    umask = Integer.parseInt(line.substring("Umask:".length()).strip(), 8);
                }
            }
        } catch (IOException | NumberFormatException e) {
            // An older kernel or another system: keep the usual umask.
        }
        int mode = 0666 & ~umask;
        StringBuilder text = new StringBuilder();
        for (int bit = 8; bit >= 0; bit--) {
            text.append((mode & (1 << bit)) != 0 ? "rwx".charAt((8 - bit) % 3) : '-');
        }
        return PosixFilePermissions.fromString(text.toString());
    }
}
