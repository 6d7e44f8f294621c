package io.samepage.daemon;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.agrona.concurrent.status.CountersReader;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The counters file's documented layout, as a reader in another process sees it. */
class CountersFileTest {

    private static final int METADATA = CountersFile.HEADER_BYTES;
    private static final int VALUES = CountersFile.HEADER_BYTES + CountersFile.METADATA_BYTES;

    @TempDir
    Path dir;

    private static long[] values() {
        long[] values = new long[CountersFile.COUNTER_NAMES.size()];
        for (int id = 0; id < values.length; id++) {
            values[id] = id * 1_000_003L - 7;
        }
        return values;
    }

    /** The bytes of a closed counters file holding {@link #values()}. */
    private byte[] writtenFile() throws IOException {
        Path path = dir.resolve("counters");
        try (CountersFile file = CountersFile.create(path, 1, 1)) {
            file.update(values(), 2);
        }
        return Files.readAllBytes(path);
    }

    private static String refusal(Path path) {
        DaemonException refused = assertThrows(DaemonException.class, () -> CountersFileReader.read(path));
        assertEquals(DaemonException.Kind.COUNTERS_FILE, refused.kind());
        return refused.getMessage();
    }

    @Test
    void whatTheWriterPublishesTheReaderReads() throws IOException {
        Path path = Files.createDirectories(dir.resolve("sub")).resolve("counters");
        try (CountersFile file = CountersFile.create(path, 4242, 1_700_000_000_000L)) {
            file.update(values(), 1_700_000_000_500L);
            CountersFileReader.Snapshot s = CountersFileReader.read(path);
            assertEquals(4242, s.pid());
            assertEquals(1_700_000_000_000L, s.startMillis());
            assertEquals(1_700_000_000_500L, s.heartbeatMillis());
            assertTrue(s.running());
            assertArrayEquals(values(), s.values());
            assertEquals(values()[1], s.value("pages_sharing"));
        }
        CountersFileReader.Snapshot closed = CountersFileReader.read(path);
        assertFalse(closed.running());
        assertArrayEquals(values(), closed.values());
    }

    @Test
    void theLayoutIsTheDocumentedOne() throws IOException {
        Path path = dir.resolve("counters");
        try (CountersFile file = CountersFile.create(path, 77, 123)) {
            file.update(values(), 456);
        }
        ByteBuffer bytes = ByteBuffer.wrap(Files.readAllBytes(path)).order(ByteOrder.nativeOrder());
        assertEquals(CountersFile.FILE_BYTES, bytes.capacity());
        assertEquals(0x4E435053, bytes.getInt(0));
        assertEquals(2, bytes.getInt(4));
        assertEquals(77, bytes.getLong(8));
        assertEquals(123, bytes.getLong(16));
        assertEquals(CountersFile.STATE_CLOSED, bytes.getLong(24));
        assertEquals(64 * 512, bytes.getInt(40));
        assertEquals(64 * 128, bytes.getInt(44));
        int record = METADATA + 512;
        assertEquals(1, bytes.getInt(record), "counter 1 is allocated");
        assertEquals(1, bytes.getInt(record + 4), "its type id is its id");
        int labelLength = bytes.getInt(record + 128);
        assertEquals("pages_sharing", new String(bytes.array(), record + 132, labelLength, StandardCharsets.US_ASCII));
        assertEquals(values()[1], bytes.getLong(VALUES + 128));
        assertEquals(0, bytes.getInt(METADATA + 512 * CountersFile.COUNTER_NAMES.size()), "no counter past the names");
    }

    @Test
    void theCounterIdsNeverChangeMeaning() {
        assertEquals("pages_shared", CountersFile.COUNTER_NAMES.get(0));
        assertEquals("pages_sharing", CountersFile.COUNTER_NAMES.get(1));
        assertEquals("general_profit", CountersFile.COUNTER_NAMES.get(10));
        assertEquals("guests", CountersFile.COUNTER_NAMES.get(14));
        assertTrue(CountersFile.COUNTER_NAMES.size() <= CountersFile.MAX_COUNTERS);
    }

    @Test
    void theReaderFindsACounterByItsTypeIdNotItsSlot() throws IOException {
        byte[] bytes = writtenFile();
        ByteBuffer buffer = ByteBuffer.wrap(bytes).order(ByteOrder.nativeOrder());
        buffer.putInt(METADATA + 4, 1).putInt(METADATA + 512 + 4, 0);
        CountersFileReader.Snapshot swapped = CountersFileReader.read(Files.write(dir.resolve("swapped"), bytes));
        assertEquals(values()[0], swapped.value("pages_sharing"));
        assertEquals(values()[1], swapped.value("pages_shared"));
    }

    /**
     * A label length far past the record (found by {@code CountersFileFuzzTest}): labels are not read, so
     * the values still are; Agrona's walk over the labels threw IndexOutOfBoundsException, which reached
     * {@code samepage stat} as an internal error.
     */
    @Test
    void aCraftedLabelLengthDoesNotStopTheReader() throws IOException {
        byte[] bytes = writtenFile();
        ByteBuffer buffer = ByteBuffer.wrap(bytes).order(ByteOrder.nativeOrder());
        buffer.putInt(METADATA + CountersReader.LABEL_OFFSET, 4_718_604)
                .putInt(METADATA + 512 + CountersReader.LABEL_OFFSET, -5);
        CountersFileReader.Snapshot read = CountersFileReader.read(Files.write(dir.resolve("crafted"), bytes));
        assertArrayEquals(values(), read.values());
    }

    /** A record state Agrona never writes: refused as corrupt, on one line. */
    @Test
    void anUnknownRecordStateIsRefusedAsCorrupt() throws IOException {
        byte[] bytes = writtenFile();
        ByteBuffer.wrap(bytes).order(ByteOrder.nativeOrder()).putInt(METADATA + 2 * 512, 77);
        Path bad = Files.write(dir.resolve("bad"), bytes);
        assertEquals(bad + ": corrupt: counter 2 in record state 77", refusal(bad));
    }

    @Test
    void aCreateReplacesTheOldFileWhole() {
        Path path = dir.resolve("counters");
        try (CountersFile first = CountersFile.create(path, 1, 1)) {
            first.update(values(), 2);
        }
        try (CountersFile _ = CountersFile.create(path, 2, 3)) {
            CountersFileReader.Snapshot s = CountersFileReader.read(path);
            assertEquals(2, s.pid());
            assertTrue(s.running());
            assertArrayEquals(new long[CountersFile.COUNTER_NAMES.size()], s.values());
        }
        assertArrayEquals(new String[] {".counters.lock", "counters"}, Arrays.stream(dir.toFile().list()).sorted()
                .toArray(), "no temporary file is left, the lock file stays");
    }

    /** Daemons killed while starting left their never-published files; each start now clears them. */
    @Test
    void aCreateClearsTheTemporaryFilesOfStartsThatWereKilled() throws IOException {
        Path path = dir.resolve("counters");
        Path elsewhere = Files.createDirectory(dir.resolve("elsewhere")).resolve("counters");
        CountersFile.create(elsewhere, 5357, 1).close();        // a counters file, as a killed start leaves one
        Files.copy(elsewhere, dir.resolve(".counters.5357.new"));
        Files.copy(elsewhere, dir.resolve(".counters.77.new"));
        Files.writeString(dir.resolve(".counters.78.new"), "someone's file a start could not put back: kept");
        Files.writeString(dir.resolve(".counters.x.new"), "not one of ours: no pid");
        try (CountersFile _ = CountersFile.create(path, 2, 3)) {
            assertArrayEquals(new String[] {".counters.78.new", ".counters.lock", ".counters.x.new", "counters",
                "elsewhere"}, Arrays.stream(dir.toFile().list()).sorted().toArray());
        }
    }

    @Test
    void aCreateThatFailsLeavesTheOldFileAsItWas() throws IOException {
        Path path = dir.resolve("counters");
        try (CountersFile old = CountersFile.create(path, 1, 1)) {
            old.update(values(), 2);
        }
        byte[] before = Files.readAllBytes(path);
        Path blocked = Files.createDirectories(dir.resolve(".counters.9.new/in-the-way"));
        DaemonException refused = assertThrows(DaemonException.class, () -> CountersFile.create(path, 9, 9));
        assertEquals(DaemonException.Kind.COUNTERS_FILE, refused.kind());
        assertTrue(refused.getMessage().startsWith("counters file " + path + ": " + dir.resolve(".counters.9.new")
                + " is in the way and is not a counters file"), refused.getMessage());
        assertArrayEquals(before, Files.readAllBytes(path));
        assertTrue(Files.isDirectory(blocked));
    }

    @Test
    void aCountersFileUnderARegularFileIsRefusedOnOneLine() throws IOException {
        Path file = Files.createFile(dir.resolve("file"));
        Path path = file.resolve("counters");
        DaemonException refused = assertThrows(DaemonException.class, () -> CountersFile.create(path, 1, 1));
        assertEquals("counters file " + path + ": cannot be created: " + file + ": not a directory", refused.getMessage());
    }

    @Test
    void anUpdateAfterCloseIsRefused() {
        CountersFile file = CountersFile.create(dir.resolve("counters"), 1, 1);
        file.close();
        file.close();
        assertThrows(IllegalStateException.class, () -> file.update(values(), 2));
    }

    @Test
    void aTruncatedFileIsRefused() throws IOException {
        Path path = dir.resolve("counters");
        try (CountersFile file = CountersFile.create(path, 1, 1)) {
            file.update(values(), 2);
        }
        byte[] all = Files.readAllBytes(path);
        Path truncated = Files.write(dir.resolve("truncated"), Arrays.copyOf(all, 100));
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
        assertEquals(dir.resolve("v9") + ": counters file layout version 9, this samepage reads version 2",
                refusal(Files.write(dir.resolve("v9"), bytes)));
        bytes[4] = 0;
        assertTrue(refusal(Files.write(dir.resolve("v0"), bytes)).contains("not initialised yet"));
    }

    /** Version 1, the file before Agrona: 48 header bytes and 64 slots of 8, little-endian. */
    @Test
    void aFileOfTheOldLayoutIsRefusedByNameOnOneLine() throws IOException {
        ByteBuffer v1 = ByteBuffer.allocate(48 + 8 * 64).order(ByteOrder.LITTLE_ENDIAN);
        v1.putInt(0, 0x4E435053).putInt(4, 1).putLong(8, 4242).putLong(24, 1).putInt(40, 64).putLong(48 + 8, 64);
        Path old = Files.write(dir.resolve("v1"), v1.array());
        String message = refusal(old);
        assertEquals(old + ": counters file layout version 1, written by an older samepage daemon; this samepage "
                + "reads version 2 (restart the daemon with this samepage)", message);
    }

    /** A counters file prepared at {@code path}, telling its notices to {@code notices}. */
    private static CountersFile prepared(Path path, List<String> notices) {
        return CountersFile.prepare(path, false, 7, 1, notices::add);
    }

    private List<String> namesInDir() {
        return Arrays.stream(dir.toFile().list()).sorted().toList();
    }

    /**
     * A counters file deleted while the daemon ran went unnoticed: the daemon wrote on to the deleted
     * file and readers found nothing until it restarted. The next update writes it anew, whole, and says so
     * once.
     */
    @Test
    void aCountersFileDeletedUnderItsWriterIsWrittenAnewAtTheNextUpdate() throws IOException {
        Path path = dir.resolve("counters");
        List<String> notices = new ArrayList<>();
        try (CountersFile file = prepared(path, notices)) {
            file.publish();
            file.update(values(), 2);
            Files.delete(path);
            file.update(values(), 3);
            CountersFileReader.Snapshot s = CountersFileReader.read(path);
            assertEquals(7, s.pid());
            assertEquals(1, s.startMillis());
            assertEquals(3, s.heartbeatMillis());
            assertTrue(s.running());
            assertArrayEquals(values(), s.values());
            file.update(values(), 4);
            assertEquals(4, CountersFileReader.read(path).heartbeatMillis(), "the new file is the one written");
            assertEquals(List.of("counters file " + path + ": deleted while the daemon ran; written anew"), notices);
            assertEquals(List.of(".counters.lock", "counters"), namesInDir());
        }
        assertFalse(CountersFileReader.read(path).running(), "close marks the new file closed");
    }

    /** Another file renamed to the path while the daemon runs is the operator's: left alone, told once. */
    @Test
    void aFileRenamedOverTheCountersFileIsLeftAloneUntilThePathIsFree() throws IOException {
        Path path = dir.resolve("counters");
        List<String> notices = new ArrayList<>();
        try (CountersFile file = prepared(path, notices)) {
            file.publish();
            Path other = Files.writeString(dir.resolve("other"), "the operator's");
            Files.move(other, path, StandardCopyOption.REPLACE_EXISTING);
            file.update(values(), 2);
            file.update(values(), 3);
            assertEquals("the operator's", Files.readString(path));
            assertEquals(List.of("counters file " + path + ": replaced by another file, which is left alone; the "
                    + "counters file is written anew once the path is free"), notices);
            Files.delete(path);
            file.update(values(), 4);
            assertEquals(4, CountersFileReader.read(path).heartbeatMillis());
            assertEquals(2, notices.size(), notices.toString());
        }
    }

    /**
     * The claim looks at the path when the daemon starts, and the file is put there when it is up, after
     * its sources have loaded: a file that is not a counters file renamed to the path in between (onto
     * nothing, or over an old counters file) was replaced by the rename. It is left as it was now, and the
     * start refused as the claim would have refused it.
     */
    @Test
    void aFileRenamedToThePathWhileStartingIsNotReplaced() throws IOException {
        Path path = dir.resolve("counters");
        byte[] foreign = "a memory dump, say".getBytes(StandardCharsets.US_ASCII);
        for (boolean oldFileThere : new boolean[] {false, true}) {
            if (oldFileThere) {
                CountersFile.create(path, 1, 1).close();
            }
            CountersFile file = prepared(path, new ArrayList<>());
            Files.move(Files.write(dir.resolve("dump"), foreign), path, StandardCopyOption.REPLACE_EXISTING);
            DaemonException refused = assertThrows(DaemonException.class, file::publish);
            file.close();
            assertEquals(DaemonException.Kind.COUNTERS_FILE, refused.kind());
            assertEquals("counters file " + path + ": exists and is not a samepage counters file; not replacing it "
                    + "(remove it, or give another counters_file)", refused.getMessage());
            assertArrayEquals(foreign, Files.readAllBytes(path), "old file there: " + oldFileThere);
            assertEquals(List.of(".counters.lock", "counters"), namesInDir(), "nothing else is left");
            Files.delete(path);
        }
    }

    /** A symbolic link at the path was followed to check its target, then replaced by the rename. */
    @Test
    void aSymbolicLinkAtThePathIsRefusedAndLeftAsItWas() throws IOException {
        Path target = dir.resolve("elsewhere");
        CountersFile.create(target, 1, 1).close();
        Path link = Files.createSymbolicLink(dir.resolve("counters"), target);
        DaemonException refused = assertThrows(DaemonException.class, () -> CountersFile.create(link, 2, 2));
        assertEquals("counters file " + link + ": is a symbolic link; not replacing it (give the path it points to, "
                + "or another counters_file)", refused.getMessage());
        assertTrue(Files.isSymbolicLink(link));
        assertEquals(1, CountersFileReader.read(target).pid());
    }

    @Test
    void aMissingFileIsRefused() {
        assertTrue(refusal(dir.resolve("absent")).contains("no counters file"));
    }

    /**
     * A file of someone else's that a start could not put back keeps a temporary name (the message names
     * it); the next start deleted every file of that form, so it was lost at the restart (a review's
     * finding). Only counters files go now.
     */
    @Test
    void aForeignFileUnderAnotherStartsTemporaryNameOutlivesTheNextStart() throws Exception {
        Path path = dir.resolve("counters");
        Path kept = Files.writeString(dir.resolve(".counters.999999.new"), "a user's memory dump");
        CountersFile.create(path, 1, 1).close();
        assertEquals("a user's memory dump", Files.readString(kept));
    }

    /**
     * The same under this start's own temporary name (a daemon in a container starts with the same pid
     * every time): the start deleted it to make its file there. Now it is refused, naming the file.
     */
    @Test
    void aForeignFileUnderThisStartsTemporaryNameRefusesTheStartAndIsKept() throws Exception {
        Path path = dir.resolve("counters");
        Path kept = Files.writeString(dir.resolve(".counters.4242.new"), "a user's memory dump");
        DaemonException refused = org.junit.jupiter.api.Assertions.assertThrows(DaemonException.class,
                () -> CountersFile.prepare(path, false, 4242, 1, _ -> { }));
        assertEquals(DaemonException.Kind.COUNTERS_FILE, refused.kind());
        assertTrue(refused.getMessage().contains(kept + " is in the way and is not a counters file"), refused.getMessage());
        assertEquals("a user's memory dump", Files.readString(kept));
        CountersFile.create(path, 4243, 1).close();     // the claim was let go
    }
}
