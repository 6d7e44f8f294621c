package io.samepage.daemon;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The counters file's documented layout, as a reader in another process sees it. */
class CountersFileTest {

    @TempDir
    Path dir;

    private static long[] values() {
        long[] values = new long[CountersFile.COUNTER_NAMES.size()];
        for (int id = 0; id < values.length; id++) {
            values[id] = id * 1_000_003L - 7;
        }
        return values;
    }

    private String refusal(Path path) {
        return assertThrows(DaemonException.class, () -> CountersFile.read(path)).getMessage();
    }

    @Test
    void whatTheWriterPublishesTheReaderReads() {
        Path path = dir.resolve("sub/counters");
        try (CountersFile file = CountersFile.create(path, 4242, 1_700_000_000_000L)) {
            file.update(values(), 1_700_000_000_500L);
            CountersFile.Snapshot s = CountersFile.read(path);
            assertEquals(4242, s.pid());
            assertEquals(1_700_000_000_000L, s.startMillis());
            assertEquals(1_700_000_000_500L, s.heartbeatMillis());
            assertTrue(s.running());
            assertArrayEquals(values(), s.values());
            assertEquals(values()[1], s.value("pages_sharing"));
        }
        CountersFile.Snapshot closed = CountersFile.read(path);
        assertFalse(closed.running());
        assertArrayEquals(values(), closed.values());
    }

    @Test
    void theLayoutIsTheDocumentedOne() throws IOException {
        Path path = dir.resolve("counters");
        try (CountersFile file = CountersFile.create(path, 77, 123)) {
            file.update(values(), 456);
        }
        ByteBuffer bytes = ByteBuffer.wrap(Files.readAllBytes(path)).order(ByteOrder.LITTLE_ENDIAN);
        assertEquals(CountersFile.FILE_BYTES, bytes.capacity());
        assertEquals(0x4E435053, bytes.getInt(0));
        assertEquals('S', bytes.get(0));
        assertEquals(1, bytes.getInt(4));
        assertEquals(77, bytes.getLong(8));
        assertEquals(123, bytes.getLong(16));
        assertEquals(CountersFile.STATE_CLOSED, bytes.getLong(24));
        assertEquals(64, bytes.getInt(40));
        assertEquals(values()[1], bytes.getLong(48 + 8));
    }

    @Test
    void theCounterIdsNeverChangeMeaning() {
        assertEquals("pages_shared", CountersFile.COUNTER_NAMES.get(0));
        assertEquals("pages_sharing", CountersFile.COUNTER_NAMES.get(1));
        assertEquals("general_profit", CountersFile.COUNTER_NAMES.get(10));
        assertEquals("guests", CountersFile.COUNTER_NAMES.get(14));
        assertTrue(CountersFile.COUNTER_NAMES.size() <= CountersFile.SLOTS);
    }

    @Test
    void aTruncatedFileIsRefused() throws IOException {
        Path path = dir.resolve("counters");
        try (CountersFile file = CountersFile.create(path, 1, 1)) {
            file.update(values(), 2);
        }
        byte[] all = Files.readAllBytes(path);
        Path truncated = Files.write(dir.resolve("truncated"), java.util.Arrays.copyOf(all, 100));
        assertEquals(truncated + ": truncated: 100 bytes, a counters file has " + CountersFile.FILE_BYTES,
                refusal(truncated));
        assertTrue(refusal(Files.write(dir.resolve("empty"), new byte[0])).contains("truncated: 0 bytes"));
    }

    @Test
    void aForeignFileIsRefused() throws IOException {
        Path foreign = Files.write(dir.resolve("foreign"), new byte[CountersFile.FILE_BYTES + 10]);
        assertEquals(foreign + ": not a samepage counters file (wrong magic)", refusal(foreign));
    }

    @Test
    void anotherLayoutVersionOrAHalfInitialisedFileIsRefused() throws IOException {
        Path path = dir.resolve("counters");
        CountersFile.create(path, 1, 1).close();
        byte[] bytes = Files.readAllBytes(path);
        bytes[4] = 9;
        assertTrue(refusal(Files.write(dir.resolve("v9"), bytes)).contains("layout version 9, this samepage reads version 1"));
        bytes[4] = 0;
        assertTrue(refusal(Files.write(dir.resolve("v0"), bytes)).contains("not initialised yet"));
    }

    @Test
    void aMissingFileIsRefused() {
        assertTrue(refusal(dir.resolve("absent")).contains("no counters file"));
    }
}
