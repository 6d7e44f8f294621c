package io.samepage.host;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

/**
 * How {@link KernelKsm} reads and writes its files. The one implementation in use is {@link #DIRECT};
 * the interface exists so tests can stand in for what a temporary directory cannot show as root: a
 * file that is not writable, and a kernel that refuses a write.
 */
interface KsmFiles {

    /** The whole file as text. */
    String read(Path file) throws IOException;

    /**
     * Writes {@code value} in one {@code write(2)} to an existing file, as {@code echo value > file}
     * does: a sysfs store handler sees one call per write, and its error (EINVAL, EBUSY) comes back here.
     */
    void write(Path file, String value) throws IOException;

    /** Whether this process may write {@code file}: false for a non-root user or a read-only mount. */
    boolean writable(Path file);

    KsmFiles DIRECT = new KsmFiles() {
        @Override
        public String read(Path file) throws IOException {
            return Files.readString(file, StandardCharsets.US_ASCII);
        }

        @Override
        public void write(Path file, String value) throws IOException {
            ByteBuffer bytes = ByteBuffer.wrap(value.getBytes(StandardCharsets.US_ASCII));
            try (FileChannel channel = FileChannel.open(file, StandardOpenOption.WRITE,
                    StandardOpenOption.TRUNCATE_EXISTING)) {
                int written = channel.write(bytes);
                if (written != value.length()) {
                    throw new IOException("short write: " + written + " of " + value.length() + " bytes");
                }
            }
        }

        @Override
        public boolean writable(Path file) {
            return Files.isWritable(file);
        }
    };
}
