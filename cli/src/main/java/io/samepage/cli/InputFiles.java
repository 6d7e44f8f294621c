package io.samepage.cli;

import java.nio.file.Files;
import java.nio.file.Path;

/** What the CLI checks of a file before it opens it to read. */
final class InputFiles {

    private InputFiles() {
    }

    /**
     * Refuses, before it is opened, a file to read that is a directory or not a regular file (a FIFO
     * would block the open until a writer came; a device could be read forever). A missing file passes:
     * the caller says what it should have been.
     *
     * @throws CommandException (exit 2) {@code FILE: is a directory} or {@code FILE: not a regular file}
     */
    static void refuseIfNotRegular(Path file) {
        if (Files.isDirectory(file)) {
            throw CommandException.badInput(file + ": is a directory");
        }
        if (Files.exists(file) && !Files.isRegularFile(file)) {
            throw CommandException.badInput(file + ": not a regular file");
        }
    }
}
