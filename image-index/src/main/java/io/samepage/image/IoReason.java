package io.samepage.image;

import java.io.IOException;
import java.nio.file.AccessDeniedException;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.FileSystemException;
import java.nio.file.NoSuchFileException;
import java.nio.file.NotDirectoryException;
import java.util.Locale;

/**
 * Why an I/O error happened, as the system names it ("permission denied", "no space left on device"),
 * never as a Java exception's class or its text, which is often only a file's name (a temporary one,
 * where a file is written beside its target). The daemon and the CLI have the same wording in their
 * own {@code IoErrors}, which this module cannot see.
 */
public final class IoReason {

    private IoReason() {
    }

    /** The reason alone, without a file's name. */
    public static String of(IOException e) {
        return switch (e) {
            case AccessDeniedException a -> "permission denied";
            case NoSuchFileException n -> "no such file or directory";
            case NotDirectoryException n -> "not a directory";
            case FileAlreadyExistsException x -> "already exists";
            case FileSystemException f when f.getReason() != null && !f.getReason().isEmpty() ->
                    f.getReason().substring(0, 1).toLowerCase(Locale.ROOT) + f.getReason().substring(1);
            case FileSystemException f -> "input/output error";
            default -> e.getMessage() != null && !e.getMessage().isEmpty()
                    ? e.getMessage().substring(0, 1).toLowerCase(Locale.ROOT) + e.getMessage().substring(1)
                    : "input/output error";
        };
    }

    /** {@code FILE: reason}, the file the error names, or the reason alone if it names none. */
    public static String withFile(IOException e) {
        String file = e instanceof FileSystemException f ? f.getFile() : null;
        return file != null ? file + ": " + of(e) : of(e);
    }
}
