package io.samepage.cli;

import io.samepage.daemon.IoErrors;
import io.samepage.image.ImageIndexException;
import io.samepage.image.ImageLayout;
import java.io.UncheckedIOException;
import java.nio.file.InvalidPathException;
import java.nio.file.Path;

/**
 * What the {@code index} commands and {@code demo} share: paths as given, the exit code of each
 * {@link ImageIndexException.Kind}, and sizes and images described for people. The checks on an index
 * file and the mode it is written with are the image index's ({@code ImageIndex.checkWritable},
 * {@code ImageIndex.writeTo}).
 */
final class IndexFiles {

    private IndexFiles() {
    }

    /**
     * The exit code of an image-index error: a change found in the image's content is a failed check,
     * an index that could not be written once checked a failure (1); everything else (a foreign, corrupt, wrong-version or stale index, a missing, empty or
     * unreadable source, an index that cannot be written) is bad input (2). The message already names
     * the file and says what to do.
     */
    static CommandException toCommandException(ImageIndexException e) {
        return switch (e.kind()) {
            case BLOCK_MISMATCH, WRITE -> CommandException.failure(e.getMessage());
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
