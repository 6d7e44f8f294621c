package io.samepage.density;

import io.samepage.image.IoReason;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.CopyOption;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.Map;

/**
 * A benchmark report's files ({@link DensityReport#files}, the wasm benchmark's) in their directory:
 * the directory checked before the work, the files written whole or not at all.
 */
public final class ReportFiles {

    private ReportFiles() {
    }

    /**
     * Creates the report's directory if it is missing, before any work.
     *
     * @throws DensityException {@link DensityException.Kind#BAD_OUTPUT}, {@code --out DIR: why}, if the
     *                          report could not be written there
     */
    public static void checkDirectory(Path dir) {
        String problem = null;
        if (Files.exists(dir) && !Files.isDirectory(dir)) {
            problem = "not a directory";
        } else {
            try {
                Files.createDirectories(dir);
                problem = Files.isWritable(dir) ? null : "not writable";
            } catch (IOException e) {
                problem = "cannot create the directory: " + IoReason.of(e);
            }
        }
        if (problem != null) {
            throw new DensityException(DensityException.Kind.BAD_OUTPUT, "--out " + dir + ": " + problem);
        }
    }

    /**
     * Writes each file to a temporary file beside it, then moves them into place: a write that fails
     * (a full disk, a full heap) leaves the last report's files as they were and no temporary file
     * behind. A file gets the mode a new file gets here (0666 less the umask).
     *
     * @throws DensityException {@link DensityException.Kind#FAILED}, {@code --out DIR: cannot write NAME:
     *                          reason}, naming the file meant (not the temporary one)
     */
    public static void write(Path dir, Map<String, byte[]> files) {
        // Arrays and paths made before the first temporary file: noting one, moving them into place and
        // deleting them after a failure (the heap full, say) allocate nothing of ours, so no failure of ours
        // leaves one behind, nor a report of which some files were moved into place and the rest are the
        // last report's. The JDK's own move may still fail between two moves (a full disk, or its own
        // allocation on a full heap): then the files moved are the new report's, the rest the last one's.
        String[] names = files.keySet().toArray(new String[0]);
        Path[] temporaries = new Path[names.length];
        Path[] targets = new Path[names.length];
        for (int i = 0; i < names.length; i++) {
            targets[i] = dir.resolve(names[i]);
        }
        CopyOption[] replace = {StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING};
        String writing = null;
        try {
            for (int i = 0; i < names.length; i++) {
                writing = names[i];
                temporaries[i] = Files.createTempFile(dir, "." + writing, ".tmp",
                        PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rw-rw-rw-")));
                try (FileChannel channel = FileChannel.open(temporaries[i], StandardOpenOption.WRITE)) {
                    ByteBuffer bytes = ByteBuffer.wrap(files.get(writing));
                    while (bytes.hasRemaining()) {
                        channel.write(bytes);
                    }
                    channel.force(true);
                }
            }
            for (int i = 0; i < names.length; i++) {
                writing = names[i];
                Files.move(temporaries[i], targets[i], replace);
                temporaries[i] = null;
            }
        } catch (IOException e) {
            throw DensityException.failed("--out " + dir + ": cannot write " + writing + ": " + IoReason.of(e));
        } finally {
            for (Path temporary : temporaries) {
                try {
                    if (temporary != null) {
                        Files.deleteIfExists(temporary);        // those not moved into place
                    }
                } catch (IOException ignored) {
                    // The failure above is the one to report.
                }
            }
        }
    }
}
