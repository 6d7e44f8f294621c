package io.samepage.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code samepage index} in this JVM: how arguments are checked and refused, and how each kind of
 * image-index error maps to an exit code. The end-to-end tests (src/test) run the launcher on images
 * with known content.
 */
class IndexCommandTest {

    private static final int PAGE = 4096;

    @TempDir
    Path dir;

    /** 12 blocks: 0-5 random, 6-7 repeat blocks 0-1, 8-10 zero, 11 holds 5 bytes. */
    private Path image() throws IOException {
        byte[] bytes = new byte[11 * PAGE + 5];
        SplittableRandom random = new SplittableRandom(3);
        for (int i = 0; i < 6 * PAGE; i++) {
            bytes[i] = (byte) random.nextInt();
        }
        System.arraycopy(bytes, 0, bytes, 6 * PAGE, 2 * PAGE);
        bytes[11 * PAGE + 4] = 9;
        return Files.write(dir.resolve("disk.img"), bytes);
    }

    private static JsonNode json(CliRun run) throws IOException {
        assertEquals(0, run.exitCode(), run.stderr());
        return new ObjectMapper().readTree(run.stdout());
    }

    /** Exit 2, nothing on stdout, exactly {@code line} on stderr. */
    private static void assertRefused(CliRun run, String line) {
        assertEquals(2, run.exitCode(), run.stderr());
        assertEquals(line + "\n", run.stderr());
        assertEquals("", run.stdout());
    }

    @Test
    void buildPrintsASummaryAndInspectReadsTheHeaderBack() throws IOException {
        Path image = image();
        Path index = dir.resolve("disk.idx");
        CliRun build = CliRun.of("index", "build", image.toString(), "-o", index.toString());
        assertEquals(0, build.exitCode(), build.stderr());
        assertEquals("", build.stderr(), "no progress bar when stderr is not a terminal");
        assertTrue(build.stdout().startsWith("Indexed " + image + ", a file: 12 blocks of 4 KiB (48.0 KiB laid out), "
                + "3 of them zero, 7 distinct non-zero.\nRoot digest "), build.stdout());
        JsonNode header = json(CliRun.of("index", "inspect", "--json", index.toString()));
        assertEquals(2, header.get("format_version").asInt());
        assertEquals("file", header.get("source_kind").asText());
        assertEquals(12 * PAGE, header.get("source_size_bytes").asLong());
        assertEquals(11 * PAGE + 5, header.get("file_bytes").asLong());
        assertEquals(12, header.get("block_count").asLong());
        assertEquals(3, header.get("zero_blocks").asLong());
        assertEquals(7, header.get("distinct_nonzero_blocks").asLong());
        assertEquals(1, header.get("files").asInt());
        assertEquals(Files.getLastModifiedTime(image).toInstant().toString(), header.get("newest_mtime").asText());
        assertTrue(header.get("change_stamps").asBoolean(), "Linux gives every file a change time and an inode");
        assertEquals(Files.size(index), header.get("index_bytes").asLong());
        assertTrue(build.stdout().contains(header.get("root_digest").asText()), build.stdout());
    }

    @Test
    void aMissingOrEmptySourceIsRefusedByName() throws IOException {
        Path missing = dir.resolve("missing.img");
        assertRefused(CliRun.of("index", "build", missing.toString(), "-o", dir.resolve("a.idx").toString()),
                "samepage index build: " + missing + ": no such file or directory");
        Path empty = Files.createFile(dir.resolve("empty.img"));
        assertRefused(CliRun.of("index", "build", empty.toString(), "-o", dir.resolve("b.idx").toString()),
                "samepage index build: " + empty + ": the file is empty");
    }

    @Test
    void anOutputThatCannotBeWrittenIsRefusedBeforeAnythingIsRead() throws IOException {
        String image = image().toString();
        Path nowhere = dir.resolve("no-such-dir/disk.idx");
        assertRefused(CliRun.of("index", "build", image, "-o", nowhere.toString()),
                "samepage index build: " + nowhere + ": the directory " + nowhere.getParent() + " does not exist");
        assertRefused(CliRun.of("index", "build", image, "-o", dir.toString()),
                "samepage index build: " + dir + ": is a directory; name the index file to write");
        assertRefused(CliRun.of("index", "build", image, "-o", image),
                "samepage index build: " + image + ": is the image " + image + " itself");
    }

    /**
     * A FILE that passes the checks but cannot be written once the index is built (/proc takes no new
     * file) is a failure while working, exit 1, with the reason in words: it was exit 2 with the
     * temporary file's name for a reason ("/proc/x: cannot write the index: /proc/.x123.tmp").
     */
    @Test
    void anOutputThatFailsWhileWritingIsAFailureWithItsReason() throws IOException {
        String image = image().toString();
        CliRun run = CliRun.of("index", "build", image, "-o", "/proc/samepage-test.idx");
        assertEquals(SamepageCommand.EXIT_FAILURE, run.exitCode(), run.stderr());
        assertTrue(run.stderr().startsWith("samepage index build: /proc/samepage-test.idx: cannot write the index: "),
                run.stderr());
        assertFalse(run.stderr().contains(".tmp"), run.stderr());
        assertEquals(1, run.stderr().lines().count(), run.stderr());
    }

    @Test
    void anIndexInsideTheDirectoryItDescribesIsRefused() throws IOException {
        Path tree = Files.createDirectories(dir.resolve("tree/sub"));
        Files.write(tree.resolve("a.bin"), new byte[] {1, 2, 3});
        Path inside = tree.resolve("tree.idx");
        assertRefused(CliRun.of("index", "build", dir.resolve("tree").toString(), "-o", inside.toString()),
                "samepage index build: " + inside + ": lies inside the image " + dir.resolve("tree")
                        + "; writing it there would change the image it describes");
    }

    @Test
    void buildWithoutAnOutputIsBadUsage() throws IOException {
        CliRun run = CliRun.of("index", "build", image().toString());
        assertEquals(2, run.exitCode());
        assertEquals("samepage index build: Missing required option: '--output=FILE'\n"
                + "see 'samepage index build --help'\n", run.stderr());
    }

    @Test
    void indexWithoutASubcommandIsBadUsage() {
        CliRun run = CliRun.of("index");
        assertEquals(2, run.exitCode());
        assertTrue(run.stderr().startsWith("samepage index: missing subcommand: build, inspect or verify"), run.stderr());
    }

    @Test
    void inspectRefusesWhatIsNotAnIndex() throws IOException {
        Path missing = dir.resolve("missing.idx");
        assertRefused(CliRun.of("index", "inspect", missing.toString()),
                "samepage index inspect: " + missing + ": no such index file");
        assertRefused(CliRun.of("index", "inspect", dir.toString()),
                "samepage index inspect: " + dir + ": is a directory, not an index file");
        Path image = image();
        CliRun foreign = CliRun.of("index", "inspect", image.toString());
        assertEquals(2, foreign.exitCode());
        assertTrue(foreign.stderr().startsWith("samepage index inspect: " + image + ": not a Samepage index"),
                foreign.stderr());
    }

    @Test
    void verifyExitsOneOnAChangedBlockAndTwoOnAMissingSource() throws IOException {
        Path image = image();
        Path index = dir.resolve("disk.idx");
        assertEquals(0, CliRun.of("index", "build", image.toString(), "-o", index.toString()).exitCode());
        JsonNode untouched = json(CliRun.of("index", "verify", "--json", index.toString(), image.toString()));
        assertEquals(12, untouched.get("blocks_compared").asLong());
        assertEquals(0, untouched.get("mismatched_blocks").asLong());
        var mtime = Files.getLastModifiedTime(image);
        byte[] bytes = Files.readAllBytes(image);
        bytes[4 * PAGE + 1] ^= 1;
        Files.write(image, bytes);
        Files.setLastModifiedTime(image, mtime);
        CliRun changed = CliRun.of("index", "verify", "--json", index.toString(), image.toString());
        assertEquals(1, changed.exitCode(), changed.stderr());
        JsonNode found = new ObjectMapper().readTree(changed.stdout());
        assertEquals(false, found.get("matches").asBoolean());
        assertEquals("it was changed: its change time moved (a write, rename, touch, chmod or link)",
                found.get("identity_difference").asText(), "the same size and modification time do not hide it");
        assertEquals(1, found.get("mismatched_blocks").asLong());
        assertEquals(4, found.get("first_mismatched_block").asLong());
        assertEquals(4 * PAGE, found.get("first_mismatched_file_offset").asLong());
        Path missing = dir.resolve("gone.img");
        assertRefused(CliRun.of("index", "verify", index.toString(), missing.toString()),
                "samepage index verify: " + missing + ": no such file or directory");
    }
}
