package io.samepage.cli.bench;

import io.samepage.cli.CommandException;
import io.samepage.daemon.IoErrors;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * A benchmark report's files under its {@code --out} directory: the directory checked before the work,
 * the files written whole or not at all.
 */
final class ReportFiles {

    private ReportFiles() {
    }

    /**
     * Creates {@code --out} if it is missing, and refuses one that cannot be written, before any work.
     *
     * @throws CommandException (exit 2) naming {@code --out} and the reason
     */
    static void checkDirectory(Path out) {
        if (Files.exists(out) && !Files.isDirectory(out)) {
            throw CommandException.badInput("--out " + out + ": not a directory");
        }
        try {
            Files.createDirectories(out);
        } catch (IOException e) {
            throw CommandException.badInput("--out " + out + ": cannot create the directory: " + IoErrors.reasonAlone(e));
        }
        if (!Files.isWritable(out)) {
            throw CommandException.badInput("--out " + out + ": not writable");
        }
    }

    /**
     * Writes each file to a temporary file beside it, then moves them into place: a write that fails
     * (a full disk) leaves the last report's files as they were and no temporary file behind. A file
     * gets the mode a new file gets here (0666 less the umask).
     *
     * @throws CommandException (exit 1) naming the file and the reason
     */
    static void write(Path out, Map<String, byte[]> files) {
        Map<String, Path> temporaries = new LinkedHashMap<>();
        String writing = null;
        try {
            for (Map.Entry<String, byte[]> file : files.entrySet()) {
                writing = file.getKey();
                Path temporary = Files.createTempFile(out, "." + writing, ".tmp",
                        PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rw-rw-rw-")));
                temporaries.put(writing, temporary);
                try (FileChannel channel = FileChannel.open(temporary, StandardOpenOption.WRITE)) {
                    ByteBuffer bytes = ByteBuffer.wrap(file.getValue());
                    while (bytes.hasRemaining()) {
                        channel.write(bytes);
                    }
                    channel.force(true);
                }
            }
            for (Map.Entry<String, Path> temporary : temporaries.entrySet()) {
                writing = temporary.getKey();
                Files.move(temporary.getValue(), out.resolve(writing), StandardCopyOption.ATOMIC_MOVE,
                        StandardCopyOption.REPLACE_EXISTING);
            }
        } catch (IOException e) {
            throw CommandException.failure("--out " + out + ": cannot write " + writing + ": " + IoErrors.reasonAlone(e));
        } finally {
            for (Path temporary : temporaries.values()) {
                try {
                    Files.deleteIfExists(temporary);            // those not moved into place
                } catch (IOException ignored) {
                    // Nothing more to do: the message above names what failed.
                }
            }
        }
    }
}
