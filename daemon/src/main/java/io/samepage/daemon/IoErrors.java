package io.samepage.daemon;

import java.io.IOException;
import java.nio.file.AccessDeniedException;
import java.nio.file.DirectoryNotEmptyException;
import java.nio.file.FileSystemException;
import java.nio.file.NoSuchFileException;
import java.nio.file.NotDirectoryException;
import java.util.Locale;

/**
 * I/O errors in words an operator reads: the file, then the reason as the system names it ("permission
 * denied", "is a directory", "no such file or directory"), never a Java exception's class or text. The
 * daemon's messages and the CLI's use it.
 */
public final class IoErrors {

    private IoErrors() {
    }

    /** {@code FILE: reason} for {@code e}, or the reason alone if it names no file. */
    public static String reason(IOException e) {
        String file = e instanceof FileSystemException f ? f.getFile() : null;
        String reason = reasonAlone(e);
        return file != null ? file + ": " + reason : reason;
    }

    /**
     * The reason alone, without the file: for a caller that names the file itself (the file it meant,
     * where the error names a temporary file written in its place).
     */
    public static String reasonAlone(IOException e) {
        return switch (e) {
            case AccessDeniedException a -> "permission denied";
            case NoSuchFileException n -> "no such file or directory";
            case NotDirectoryException n -> "not a directory";
            case DirectoryNotEmptyException d -> "a directory that is not empty";
            case java.nio.file.FileAlreadyExistsException x -> "already exists";
            case FileSystemException f when f.getReason() != null -> lowerFirst(f.getReason());
            case FileSystemException f -> "cannot be read";
            default -> e.getMessage() != null ? e.getMessage() : "input/output error";
        };
    }

    private static String lowerFirst(String text) {
        return text.isEmpty() ? text : text.substring(0, 1).toLowerCase(Locale.ROOT) + text.substring(1);
    }
}
