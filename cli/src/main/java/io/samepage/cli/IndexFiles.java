package io.samepage.cli;

import io.samepage.daemon.IoErrors;
import io.samepage.image.ImageIndex;
import io.samepage.image.ImageIndexException;
import io.samepage.image.ImageLayout;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.InvalidPathException;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermission;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.Set;

/**
 * What the {@code index} commands and {@code demo --index} share: paths as given, the checks on an
 * index file to read or write, writing it with the right mode, and the exit code of each
 * {@link ImageIndexException.Kind}.
 */
final class IndexFiles {

    private IndexFiles() {
    }

    /**
     * The exit code of an image-index error: a change found in the image's content is a failed check
     * (1); everything else (a foreign, corrupt, wrong-version or stale index, a missing, empty or
     * unreadable source, an index that cannot be written) is bad input (2). The message already names
     * the file and says what to do.
     */
    static CommandException toCommandException(ImageIndexException e) {
        return switch (e.kind()) {
            case BLOCK_MISMATCH -> CommandException.failure(e.getMessage());
            case FOREIGN, VERSION, CORRUPT, STALE, IO, BAD_SOURCE -> CommandException.badInput(e.getMessage());
        };
    }

    /**
     * An I/O error met while walking or reading the image (a subdirectory that cannot be listed): bad
     * input (2), naming the file and the reason.
     */
    static CommandException unreadable(UncheckedIOException e) {
        return CommandException.badInput(IoErrors.reason(e.getCause()));
    }

    /** {@code name} as a path, or exit 2 naming it. */
    static Path path(String name) {
        try {
            return Path.of(name);
        } catch (InvalidPathException e) {
            throw CommandException.badInput(name + ": not a valid path (" + e.getReason() + ")");
        }
    }

    /**
     * Refuses, before it is opened, an index file to read that is a directory or not a regular file (a
     * FIFO would block the open until a writer came).
     *
     * @throws CommandException (exit 2) naming the file and what it is
     */
    static void checkReadable(Path file) {
        if (Files.isDirectory(file)) {
            throw CommandException.badInput(file + ": is a directory, not an index file");
        }
        InputFiles.refuseIfNotRegular(file);
    }

    /**
     * Writes {@code index} to {@code file} atomically ({@link ImageIndex#writeTo}) with the mode a user
     * expects: the mode of the file it replaces, or for a new file 0666 less the umask, as any file
     * created there gets. ({@code writeTo}'s temporary file is 0600; the mode is set once it is renamed.)
     *
     * @throws ImageIndexException if the index cannot be written
     * @throws CommandException (exit 1) if it was written but its mode could not be set
     */
    static void write(ImageIndex index, Path file) {
        Set<PosixFilePermission> mode;
        try {
            mode = Files.isRegularFile(file) ? Files.getPosixFilePermissions(file) : newFileMode();
        } catch (IOException e) {
            mode = newFileMode();
        }
        index.writeTo(file);
        try {
            Files.setPosixFilePermissions(file, mode);
        } catch (IOException e) {
            throw CommandException.failure(file + ": written, but its mode could not be set to "
                    + PosixFilePermissions.toString(mode) + ": " + IoErrors.reason(e));
        }
    }

    /** 0666 less this process's umask ({@code Umask:} of /proc/self/status), or 0644 where it is not shown. */
    private static Set<PosixFilePermission> newFileMode() {
        int umask = 022;
        try {
            for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
                if (line.startsWith("Umask:")) {
                    umask = Integer.parseInt(line.substring("Umask:".length()).strip(), 8);
                }
            }
        } catch (IOException | NumberFormatException e) {
            // An older kernel or another system: keep the usual umask, 022.
        }
        int mode = 0666 & ~umask;
        StringBuilder text = new StringBuilder();
        for (int bit = 8; bit >= 0; bit--) {
            text.append((mode & (1 << bit)) != 0 ? "rwx".charAt((8 - bit) % 3) : '-');
        }
        return PosixFilePermissions.fromString(text.toString());
    }

    /**
     * Refuses, before any work, an index file that could not be written or that would change the image
     * it describes: a directory, something that is not a regular file (a device), a folder that does
     * not exist or cannot be written, the image itself, or a path inside the image's directory tree.
     *
     * @throws CommandException (exit 2) naming the file and what is wrong
     */
    static void checkWritable(Path output, Path source) {
        if (Files.isDirectory(output)) {
            throw CommandException.badInput(output + ": is a directory; name the index file to write");
        }
        if (Files.exists(output) && !Files.isRegularFile(output)) {
            throw CommandException.badInput(output + ": exists and is not a regular file; it would be replaced");
        }
        Path folder = output.toAbsolutePath().getParent();
        if (!Files.isDirectory(folder)) {
            throw CommandException.badInput(output + ": the directory " + folder + " does not exist");
        }
        if (!Files.isWritable(folder)) {
            throw CommandException.badInput(output + ": cannot write in " + folder + ": permission denied");
        }
        try {
            Path image = source.toRealPath();
            if (Files.isDirectory(image) && folder.toRealPath().startsWith(image)) {
                throw CommandException.badInput(output + ": lies inside the image " + source
                        + "; writing it there would change the image it describes");
            }
            if (Files.exists(output) && Files.isSameFile(output, image)) {
                throw CommandException.badInput(output + ": is the image " + source + " itself");
            }
        } catch (IOException e) {
            // The source is missing or unreadable: building it says so, naming it.
        }
    }

    /** {@code bytes} for people: in KiB below 1 MiB, in MiB below 1 GiB, else in GiB, one decimal. */
    static String size(long bytes) {
        if (bytes < 1L << 20) {
            return String.format(java.util.Locale.ROOT, "%.1f KiB", bytes / 1024.0);
        }
        return bytes < 1L << 30 ? String.format(java.util.Locale.ROOT, "%.1f MiB", bytes / CounterReport.MIB)
                : String.format(java.util.Locale.ROOT, "%.1f GiB", bytes / (CounterReport.MIB * 1024));
    }

    /** What the image is, for people: "a file" or "a directory of N files". */
    static String describe(ImageLayout layout) {
        int files = layout.extents().size();
        return layout.kind() == ImageLayout.Kind.FILE ? "a file"
                : "a directory of " + files + (files == 1 ? " file" : " files");
    }
}
