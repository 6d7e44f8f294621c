package io.samepage.daemon;

import static io.samepage.daemon.CountersFile.COUNTER_NAMES;
import static io.samepage.daemon.CountersFile.FILE_BYTES;
import static io.samepage.daemon.CountersFile.HEADER_BYTES;
import static io.samepage.daemon.CountersFile.LAYOUT_VERSION;
import static io.samepage.daemon.CountersFile.MAGIC;
import static io.samepage.daemon.CountersFile.METADATA_BYTES;
import static io.samepage.daemon.CountersFile.OFFSET_HEARTBEAT;
import static io.samepage.daemon.CountersFile.OFFSET_MAGIC;
import static io.samepage.daemon.CountersFile.OFFSET_METADATA_LENGTH;
import static io.samepage.daemon.CountersFile.OFFSET_PID;
import static io.samepage.daemon.CountersFile.OFFSET_START;
import static io.samepage.daemon.CountersFile.OFFSET_STATE;
import static io.samepage.daemon.CountersFile.OFFSET_VALUES_LENGTH;
import static io.samepage.daemon.CountersFile.OFFSET_VERSION;
import static io.samepage.daemon.CountersFile.STATE_RUNNING;
import static io.samepage.daemon.CountersFile.VALUES_BYTES;

import java.io.IOException;
import java.nio.MappedByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import org.agrona.IoUtil;
import org.agrona.concurrent.UnsafeBuffer;
import org.agrona.concurrent.status.AtomicCounter;
import org.agrona.concurrent.status.CountersManager;

/**
 * One {@link CountersFile}, mapped for writing: its header, its counters, and its identity (the file key,
 * by which the counters file tells its own file at the path from another). {@link #create} writes a file
 * whole, in the layout {@link CountersFile} documents; whatever it throws, an {@link OutOfMemoryError} too,
 * it leaves no mapping behind (the caller deletes the file).
 *
 * <p>Not thread safe: the counters file's single writer uses it.
 */
record CountersFileMapping(MappedByteBuffer buffer, UnsafeBuffer header, AtomicCounter[] counters, Object fileKey) {

    /** Creates {@code file} and writes it whole: state running, every counter 0, the version word last. */
    static CountersFileMapping create(Path file, long pid, long startMillis) throws IOException {
        MappedByteBuffer mapped;
        try (FileChannel channel = FileChannel.open(file, StandardOpenOption.CREATE_NEW,
                StandardOpenOption.READ, StandardOpenOption.WRITE)) {
            mapped = channel.map(FileChannel.MapMode.READ_WRITE, 0, FILE_BYTES);
        }
        try {
            UnsafeBuffer header = new UnsafeBuffer(mapped, 0, HEADER_BYTES);
            header.putInt(OFFSET_MAGIC, MAGIC);
            header.putLong(OFFSET_PID, pid);
            header.putLong(OFFSET_START, startMillis);
            header.putLong(OFFSET_STATE, STATE_RUNNING);
            header.putLong(OFFSET_HEARTBEAT, startMillis);
            header.putInt(OFFSET_METADATA_LENGTH, METADATA_BYTES);
            header.putInt(OFFSET_VALUES_LENGTH, VALUES_BYTES);
            CountersManager manager = new CountersManager(new UnsafeBuffer(mapped, HEADER_BYTES, METADATA_BYTES),
                    new UnsafeBuffer(mapped, HEADER_BYTES + METADATA_BYTES, VALUES_BYTES), StandardCharsets.US_ASCII);
            AtomicCounter[] counters = new AtomicCounter[COUNTER_NAMES.size()];
            for (int id = 0; id < counters.length; id++) {
                counters[id] = manager.newCounter(COUNTER_NAMES.get(id), id);
            }
            header.putIntRelease(OFFSET_VERSION, LAYOUT_VERSION);
            return new CountersFileMapping(mapped, header, counters, CountersFile.identityOf(file));
        } catch (IOException | RuntimeException | Error e) {
            IoUtil.unmap(mapped);
            throw e;
        }
    }

    void write(long[] values, long heartbeatMillis) {
        for (int id = 0; id < values.length; id++) {
            counters[id].setRelease(values[id]);
        }
        header.putLongRelease(OFFSET_HEARTBEAT, heartbeatMillis);
    }
}
