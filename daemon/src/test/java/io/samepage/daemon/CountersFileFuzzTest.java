package io.samepage.daemon;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.code_intelligence.jazzer.api.FuzzedDataProvider;
import com.code_intelligence.jazzer.junit.FuzzTest;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.regex.Pattern;

/**
 * Coverage-guided fuzzing of the counters file reader ({@code samepage stat FILE}): whatever a file
 * holds, {@link CountersFileReader#read} returns a snapshot of every counter, or refuses it with one
 * {@link DaemonException} of kind {@code COUNTERS_FILE} whose message is one printable line naming the
 * file. No other exception may escape.
 *
 * <p>The input either is the file itself, or patches a file a daemon wrote ({@link CountersFile},
 * every counter set), so that the fuzzer reaches the counters' metadata, not only the header: a
 * few writes of up to 8 bytes at offsets it chooses, then maybe a cut. In {@code ./mvnw verify} this
 * runs for the bound below (see docs/fuzzing.md).
 */
class CountersFileFuzzTest {

    private static final Pattern NOT_ONE_LINE = Pattern.compile("\\R|\\p{Cntrl}");
    private static final Path DIRECTORY = directory();
    private static final byte[] WRITTEN = written(DIRECTORY.resolve("written"));
    private static final Path FILE = DIRECTORY.resolve("counters");

    @FuzzTest(maxExecutions = 500_000, maxDuration = "20s")
    void anyCountersFileIsReadOrRefusedWithOneLine(FuzzedDataProvider data) throws IOException {
        byte[] file;
        if (data.consumeBoolean()) {
            file = data.consumeRemainingAsBytes();
        } else {
            file = WRITTEN.clone();
            int patches = data.consumeInt(1, 8);
            for (int p = 0; p < patches; p++) {
                int at = data.consumeInt(0, file.length - 1);
                byte[] bytes = data.consumeBytes(8);
                System.arraycopy(bytes, 0, file, at, Math.min(bytes.length, file.length - at));
            }
            if (data.consumeBoolean()) {
                file = java.util.Arrays.copyOf(file, data.consumeInt(0, file.length));
            }
        }
        Files.write(FILE, file);
        CountersFileReader.Snapshot snapshot;
        try {
            snapshot = CountersFileReader.read(FILE);
        } catch (DaemonException e) {
            assertEquals(DaemonException.Kind.COUNTERS_FILE, e.kind(), e.getMessage());
            assertTrue(e.getMessage().startsWith(FILE + ": "), e.getMessage());
            assertFalse(NOT_ONE_LINE.matcher(e.getMessage()).find(), "not one printable line: " + e.getMessage());
            return;
        }
        assertEquals(CountersFile.COUNTER_NAMES.size(), snapshot.values().length);
        assertTrue(snapshot.state(System.currentTimeMillis()).matches("running|stale|closed"));
    }

    private static Path directory() {
        try {
            Path directory = Files.createTempDirectory("counters-fuzz");
            directory.toFile().deleteOnExit();
            return directory;
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** The bytes of a closed counters file with every counter set to a value of its own. */
    private static byte[] written(Path path) {
        long[] values = new long[CountersFile.COUNTER_NAMES.size()];
        for (int i = 0; i < values.length; i++) {
            values[i] = 1000L * (i + 1) + i;
        }
        try (CountersFile file = CountersFile.create(path, 4242, 1_700_000_000_000L)) {
            file.update(values, 1_700_000_000_500L);
        }
        try {
            return Files.readAllBytes(path);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
