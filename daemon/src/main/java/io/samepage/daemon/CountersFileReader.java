package io.samepage.daemon;

import static io.samepage.daemon.CountersFile.FILE_BYTES;
import static io.samepage.daemon.CountersFile.HEADER_BYTES;
import static io.samepage.daemon.CountersFile.LAYOUT_VERSION;
import static io.samepage.daemon.CountersFile.METADATA_BYTES;
import static io.samepage.daemon.CountersFile.VALUES_BYTES;

import io.samepage.daemon.DaemonException.Kind;
import java.io.IOException;
import java.nio.MappedByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import org.agrona.IoUtil;
import org.agrona.concurrent.UnsafeBuffer;
import org.agrona.concurrent.status.CountersReader;

/**
 * Reads a daemon's {@link CountersFile} from any process, as AeronStat reads Aeron's: it maps the file
 * read-only, checks the header, and walks the allocated counters of an Agrona {@link CountersReader},
 * taking each one's value by its type id (what it means); it never decodes their labels. It never
 * writes, so a daemon is not disturbed and a reader needs only read permission.
 *
 * <p>Thread safety: stateless; safe from any thread.
 */
public final class CountersFileReader {

    /** The smallest file whose magic and version can be read. */
    private static final int VERSIONED_BYTES = 8;

    /** What a reader saw: the header and every counter of {@link CountersFile#COUNTER_NAMES}, by id. */
    public record Snapshot(long pid, long startMillis, boolean running, long heartbeatMillis, long[] values) {

        /**
         * {@code closed} once the daemon marked its file so; {@code running} while its heartbeat is at most
         * {@link CountersFile#LIVENESS_TIMEOUT_MILLIS} old at {@code nowMillis}; else {@code stale}: the
         * daemon was killed, or hangs. The pid is no evidence: another process may hold it by now.
         */
        public String state(long nowMillis) {
            if (!running) {
                return "closed";
            }
            return nowMillis - heartbeatMillis <= CountersFile.LIVENESS_TIMEOUT_MILLIS ? "running" : "stale";
        }

        /** The value of the counter called {@code name}; 0 for a name that is not a counter. */
        public long value(String name) {
            int id = CountersFile.COUNTER_NAMES.indexOf(name);
            return id < 0 ? 0 : values[id];
        }
    }

    private CountersFileReader() {
    }

    /**
     * Reads the file once.
     *
     * @throws DaemonException {@link Kind#COUNTERS_FILE}, on one line, if it is missing, unreadable,
     *                         truncated, foreign, of another layout version (the old one by name), not
     *                         initialised yet, or corrupt
     */
    public static Snapshot read(Path path) {
        try (FileChannel channel = FileChannel.open(path, StandardOpenOption.READ)) {
            long size = channel.size();
            if (size < VERSIONED_BYTES) {
                throw truncated(path, size);
            }
            MappedByteBuffer mapped = channel.map(FileChannel.MapMode.READ_ONLY, 0, Math.min(size, FILE_BYTES));
            try {
                return read(path, size, new UnsafeBuffer(mapped));
            } finally {
                IoUtil.unmap(mapped);
            }
        } catch (NoSuchFileException e) {
            throw new DaemonException(Kind.COUNTERS_FILE, path
                    + ": no counters file (is the daemon running? give --counters-file)");
        } catch (IOException e) {
            throw new DaemonException(Kind.COUNTERS_FILE, path + ": cannot be read: " + IoErrors.reason(e), e);
        }
    }

    private static Snapshot read(Path path, long size, UnsafeBuffer file) {
        if (file.getInt(CountersFile.OFFSET_MAGIC) != CountersFile.MAGIC) {
            throw refused(path, "not a samepage counters file (wrong magic)");
        }
        int version = file.getIntVolatile(CountersFile.OFFSET_VERSION);
        if (version == 0) {
            throw refused(path, "not initialised yet (the daemon is starting)");
        }
        if (version == 1) {
            throw refused(path, "counters file layout version 1, written by an older samepage daemon; this samepage "
                    + "reads version " + LAYOUT_VERSION + " (restart the daemon with this samepage)");
        }
        if (version != LAYOUT_VERSION) {
            throw refused(path, "counters file layout version " + version + ", this samepage reads version "
                    + LAYOUT_VERSION);
        }
        if (size < FILE_BYTES) {
            throw truncated(path, size);
        }
        int metadataBytes = file.getInt(CountersFile.OFFSET_METADATA_LENGTH);
        int valuesBytes = file.getInt(CountersFile.OFFSET_VALUES_LENGTH);
        if (metadataBytes != METADATA_BYTES || valuesBytes != VALUES_BYTES) {
            throw refused(path, "corrupt: counters buffers of " + metadataBytes + " and " + valuesBytes
                    + " bytes, layout version " + LAYOUT_VERSION + " has " + METADATA_BYTES + " and " + VALUES_BYTES);
        }
        long state = file.getLongVolatile(CountersFile.OFFSET_STATE);
        if (state != CountersFile.STATE_RUNNING && state != CountersFile.STATE_CLOSED) {
            throw refused(path, "corrupt: state word " + state);
        }
        CountersReader counters = new CountersReader(new UnsafeBuffer(file, HEADER_BYTES, METADATA_BYTES),
                new UnsafeBuffer(file, HEADER_BYTES + METADATA_BYTES, VALUES_BYTES), StandardCharsets.US_ASCII);
        // Walked by hand, not with CountersReader.forEach: that decodes each label by the length the file
        // gives, and a crafted length throws out of bounds. The type id and the value are all this needs.
        long[] values = new long[CountersFile.COUNTER_NAMES.size()];
        for (int counterId = 0; counterId <= counters.maxCounterId(); counterId++) {
            int counterState = counters.getCounterState(counterId);
            if (counterState == CountersReader.RECORD_UNUSED) {
                break;
            }
            if (counterState == CountersReader.RECORD_ALLOCATED) {
                int typeId = counters.getCounterTypeId(counterId);
                if (typeId >= 0 && typeId < values.length) {
                    values[typeId] = counters.getCounterValue(counterId);
                }
            } else if (counterState != CountersReader.RECORD_RECLAIMED) {
                throw refused(path, "corrupt: counter " + counterId + " in record state " + counterState);
            }
        }
        return new Snapshot(file.getLong(CountersFile.OFFSET_PID), file.getLong(CountersFile.OFFSET_START),
                state == CountersFile.STATE_RUNNING, file.getLongVolatile(CountersFile.OFFSET_HEARTBEAT), values);
    }

    private static DaemonException truncated(Path path, long size) {
        return refused(path, "truncated: " + size + " bytes, a counters file has " + FILE_BYTES);
    }

    private static DaemonException refused(Path path, String what) {
        return new DaemonException(Kind.COUNTERS_FILE, path + ": " + what);
    }
}
