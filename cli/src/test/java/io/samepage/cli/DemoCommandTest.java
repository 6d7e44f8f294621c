package io.samepage.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code samepage demo} in this JVM: how its image options are checked, and the boot on a tiny image.
 * The end-to-end tests (src/test) run the default demo and the --index cases through the launcher.
 */
class DemoCommandTest {

    private static final int PAGE = 4096;

    @TempDir
    Path dir;

    @Test
    void rebuildWithoutAnIndexIsBadUsage() {
        CliRun run = CliRun.of("demo", "--rebuild");
        assertEquals(2, run.exitCode());
        assertEquals("samepage demo: --rebuild: rebuilds the --index FILE, and no --index was given\n", run.stderr());
        assertEquals("", run.stdout());
    }

    @Test
    void aMissingImageIsRefusedByName() {
        Path missing = dir.resolve("no-such-image");
        CliRun run = CliRun.of("demo", "--image", missing.toString());
        assertEquals(2, run.exitCode());
        assertEquals("samepage demo: " + missing + ": no such file or directory\n", run.stderr());
        assertEquals("", run.stdout());
    }

    /** 40 blocks: 30 random, 5 repeats of blocks 0-4, 5 zero. */
    private Path image() throws IOException {
        byte[] bytes = new byte[40 * PAGE];
        new SplittableRandom(23).nextBytes(bytes);
        System.arraycopy(bytes, 0, bytes, 30 * PAGE, 5 * PAGE);
        java.util.Arrays.fill(bytes, 35 * PAGE, 40 * PAGE, (byte) 0);
        return Files.write(dir.resolve("disk.img"), bytes);
    }

    /** The size and modification time kept do not hide the change: the index is refused before the boot. */
    @Test
    void anImageBlockChangedUnderItsIndexWithTheModificationTimeKeptIsRefusedAsStale() throws IOException {
        Path image = image();
        Path index = dir.resolve("disk.idx");
        assertEquals(0, CliRun.of("index", "build", image.toString(), "-o", index.toString()).exitCode());
        FileTime mtime = Files.getLastModifiedTime(image);
        byte[] bytes = Files.readAllBytes(image);
        bytes[12 * PAGE] ^= 1;
        Files.write(image, bytes);
        Files.setLastModifiedTime(image, mtime);
        CliRun run = CliRun.of("demo", "--image", image.toString(), "--index", index.toString(), "--guests", "2",
                "--guest-mib", "1");
        assertEquals(2, run.exitCode(), run.stderr());
        assertEquals("samepage demo: " + index + " does not describe " + image + " any more: it was changed: its "
                + "change time moved (a write, rename, touch, chmod or link); rebuild the index (--rebuild)\n",
                run.stderr());
        assertEquals("", run.stdout());
    }

    @Test
    void anIndexThatCannotBeWrittenIsRefusedBeforeTheBoot() throws IOException {
        Path nowhere = dir.resolve("no-such-dir/disk.idx");
        CliRun run = CliRun.of("demo", "--image", image().toString(), "--index", nowhere.toString());
        assertEquals(2, run.exitCode());
        assertEquals("samepage demo: " + nowhere + ": the directory " + nowhere.getParent() + " does not exist\n",
                run.stderr());
    }

    @Test
    void anImageTooLargeForACopyPerGuestIsRefusedBeforeItIsRead() throws IOException {
        long hostBytes = ((com.sun.management.OperatingSystemMXBean) java.lang.management.ManagementFactory
                .getOperatingSystemMXBean()).getTotalMemorySize();
        Path sparse = dir.resolve("sparse.img");
        try (java.io.RandomAccessFile file = new java.io.RandomAccessFile(sparse.toFile(), "rw")) {
            file.setLength(hostBytes / 2 + PAGE);
        }
        CliRun run = CliRun.of("demo", "--image", sparse.toString(), "--guests", "2");
        assertEquals(2, run.exitCode(), run.stderr());
        assertTrue(run.stderr().startsWith("samepage demo: --image " + sparse + " --guests 2: without the index the "
                + "guests need "), run.stderr());
        assertTrue(run.stderr().endsWith("Use fewer guests or a smaller image\n"), run.stderr());
    }

    @Test
    void laterGuestsMapWhatTheFirstReadAndTheHostHoldsOneCopy() throws IOException {
        Path image = image();
        CliRun run = CliRun.of("demo", "--image", image.toString(), "--guests", "2", "--guest-mib", "1", "--json");
        assertEquals(0, run.exitCode(), run.stderr());
        JsonNode boot = new ObjectMapper().readTree(run.stdout()).get("image");
        assertEquals(40, boot.get("block_count").asLong());
        assertEquals(5, boot.get("zero_blocks").asLong());
        assertEquals(30, boot.get("distinct_nonzero_blocks").asLong());
        assertEquals("built_in_memory", boot.get("index_origin").asText());
        JsonNode without = boot.get("without_index");
        assertEquals(40, without.get("guests").get(1).get("blocks_read").asLong());
        assertEquals(2 * 40 + 1, without.get("host_frames_in_use").asLong(), "a copy per guest, and the zero frame");
        JsonNode with = boot.get("with_index");
        JsonNode first = with.get("guests").get(0);
        assertEquals(30, first.get("blocks_read").asLong());
        assertEquals(5, first.get("blocks_mapped").asLong());
        assertEquals(5, first.get("zero_blocks").asLong());
        JsonNode second = with.get("guests").get(1);
        assertEquals(0, second.get("blocks_read").asLong());
        assertEquals(35, second.get("blocks_mapped").asLong());
        assertEquals(30 + 1, with.get("host_frames_in_use").asLong(), "one copy, and the zero frame");
        assertEquals(30, with.get("resident_frames").asLong());
        assertEquals(0.0, boot.get("later_guests_read_fraction").asDouble());
        assertEquals(2 * 2 * 1, boot.get("blocks_verified").asLong(), "blocks 0 of 2 guests, twice");
        assertTrue(run.stdout().contains("\"pages_verified\""), "the merge part follows");
    }

    /** The text's two load tables give each guest's JIT compilation time beside its load time, and say what it is. */
    @Test
    void theTextGivesEachLoadsJitTimeBesideIt() throws IOException {
        CliRun run = CliRun.of("demo", "--image", image().toString(), "--guests", "2", "--guest-mib", "1");
        assertEquals(0, run.exitCode(), run.stderr());
        java.util.List<String> lines = run.stdout().lines().toList();
        assertEquals(2, lines.stream().filter(l -> l.endsWith("load_ms  jit_ms")).count(), run.stdout());
        assertEquals(4, lines.stream().filter(l -> l.matches("vm-[12] .* [0-9]+\\.[0-9]{2} +[0-9]+")).count(), run.stdout());
        assertTrue(lines.stream().anyMatch(l -> l.matches("jit_ms: how long the JVM's compilers worked during the load\\. "
                + "One guest loaded each way first, twice, unrecorded here, while its code was compiled: [0-9]+ then "
                + "[0-9]+ ms without the index, [0-9]+ then [0-9]+ with it\\.")), run.stdout());
    }
}
