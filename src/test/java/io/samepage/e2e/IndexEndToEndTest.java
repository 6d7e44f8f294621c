package io.samepage.e2e;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.samepage.hashing.HashAlgorithm;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code samepage index build|inspect|verify} through the launcher, on images of known content: a raw
 * image file of 100 blocks and 100 bytes, and a small directory tree.
 */
class IndexEndToEndTest {

    private static final int PAGE = 4096;

    /** The image file: blocks 0-59 random, 60-79 repeat 0-19, 80-99 zero, 100 holds 100 bytes. */
    static final int FILE_BLOCKS = 101;
    static final int FILE_ZERO_BLOCKS = 20;
    static final int FILE_DISTINCT_BLOCKS = 61;

    @TempDir
    static Path dir;

    static Path image;
    static Path tree;

    @BeforeAll
    static void writeImages() throws IOException {
        SplittableRandom random = new SplittableRandom(7);
        byte[] bytes = new byte[100 * PAGE + 100];
        for (int i = 0; i < 60 * PAGE; i++) {
            bytes[i] = (byte) random.nextInt();
        }
        System.arraycopy(bytes, 0, bytes, 60 * PAGE, 20 * PAGE);
        for (int i = 100 * PAGE; i < bytes.length; i++) {
            bytes[i] = (byte) (i | 1);
        }
        image = Files.write(dir.resolve("disk.img"), bytes);
        tree = writeTree(dir.resolve("tree"), random);
    }

    /**
     * A directory of 5 files in 9 blocks: {@code bin/tool} (3 blocks), {@code etc/conf} (10 bytes),
     * {@code lib/a.so} (4 blocks), {@code lib/empty} (no block), {@code lib/zeros} (1 zero block).
     * {@code lib/a.so} holds a block of its own, then {@code bin/tool}'s 3 blocks: 5 distinct non-zero blocks.
     */
    static Path writeTree(Path root, SplittableRandom random) throws IOException {
        Files.createDirectories(root.resolve("bin"));
        Files.createDirectories(root.resolve("etc"));
        Files.createDirectories(root.resolve("lib"));
        byte[] tool = new byte[3 * PAGE];
        random.nextBytes(tool);
        Files.write(root.resolve("bin/tool"), tool);
        Files.writeString(root.resolve("etc/conf"), "answer=42\n");
        byte[] library = new byte[4 * PAGE];
        random.nextBytes(library);
        System.arraycopy(tool, 0, library, PAGE, 3 * PAGE);
        Files.write(root.resolve("lib/a.so"), library);
        Files.createFile(root.resolve("lib/empty"));
        Files.write(root.resolve("lib/zeros"), new byte[PAGE]);
        return root;
    }

    /** Builds an index of {@code source} into {@code name}, requiring exit 0 and a silent stderr. */
    static Path build(Path source, String name) throws Exception {
        Path index = dir.resolve(name);
        Samepage.Run run = Samepage.run("index", "build", source.toString(), "-o", index.toString());
        assertEquals(0, run.exitCode(), run.stderr());
        assertEquals("", run.stderr(), "no progress bar when stderr is not a terminal");
        return index;
    }

    @Test
    void buildThenInspectGivesExactBlockAndZeroCounts() throws Exception {
        Path index = build(image, "file.idx");
        JsonNode header = Samepage.json("index", "inspect", "--json", index.toString());
        assertEquals(2, header.get("format_version").asInt());
        assertEquals("file", header.get("source_kind").asText());
        assertEquals(FILE_BLOCKS, header.get("block_count").asLong());
        assertEquals(FILE_ZERO_BLOCKS, header.get("zero_blocks").asLong());
        assertEquals(FILE_DISTINCT_BLOCKS, header.get("distinct_nonzero_blocks").asLong());
        assertEquals((long) FILE_BLOCKS * PAGE, header.get("source_size_bytes").asLong());
        assertEquals(Files.size(image), header.get("file_bytes").asLong());
        assertEquals(1, header.get("files").asInt());
        assertEquals(Files.size(index), header.get("index_bytes").asLong());
        assertEquals(HashAlgorithm.defaultAlgorithm().name(), header.get("fast_hash").asText(), "the default fast hash");
        assertTrue(header.get("root_digest").asText().matches("[0-9a-f]{64}"), header.toString());
        assertEquals(Files.getLastModifiedTime(image).toInstant().toString(), header.get("newest_mtime").asText());
    }

    @Test
    void aDirectoryTreeIsIndexedFileByFile() throws Exception {
        Path index = build(tree, "tree.idx");
        JsonNode header = Samepage.json("index", "inspect", "--json", index.toString());
        assertEquals("directory", header.get("source_kind").asText());
        assertEquals(5, header.get("files").asInt());
        assertEquals(9, header.get("block_count").asLong());
        assertEquals(1, header.get("zero_blocks").asLong());
        assertEquals(5, header.get("distinct_nonzero_blocks").asLong());
        Samepage.Run text = Samepage.run("index", "inspect", index.toString());
        assertEquals(0, text.exitCode(), text.stderr());
        assertTrue(text.stdout().matches("(?s)field +value\\n.*\\nblock_count +9\\n.*"), text.stdout());
        assertEquals(0, Samepage.run("index", "verify", index.toString(), tree.toString()).exitCode());
    }

    @Test
    void buildPrintsOneParagraphOfSummary() throws Exception {
        Path index = dir.resolve("summary.idx");
        Samepage.Run run = Samepage.run("index", "build", image.toString(), "-o", index.toString());
        assertEquals(0, run.exitCode(), run.stderr());
        List<String> lines = run.stdout().lines().toList();
        assertEquals(3, lines.size(), run.stdout());
        assertEquals("Indexed " + image + ", a file: 101 blocks of 4 KiB (404.0 KiB laid out), 20 of them zero, "
                + "61 distinct non-zero.", lines.get(0));
        assertTrue(lines.get(1).matches("Root digest [0-9a-f]{64}\\."), lines.get(1));
        assertTrue(lines.get(2).matches("Wrote " + index + " \\(\\d+\\.\\d KiB\\) in \\d+\\.\\d\\d s\\."),
                lines.get(2));
    }

    @Test
    void verifyCatchesAChangedByteAndAChangedModificationTime() throws Exception {
        Path copy = Files.copy(image, dir.resolve("verify.img"));
        Path index = build(copy, "verify.idx");
        Samepage.Run untouched = Samepage.run("index", "verify", index.toString(), copy.toString());
        assertEquals(0, untouched.exitCode(), untouched.stderr());
        assertTrue(untouched.stdout().contains("all 101 block digests match"), untouched.stdout());

        FileTime mtime = Files.getLastModifiedTime(copy);
        byte[] bytes = Files.readAllBytes(copy);
        bytes[42 * PAGE + 7] ^= 0x10;
        Files.write(copy, bytes);
        Files.setLastModifiedTime(copy, mtime);
        Samepage.Run changed = Samepage.run("index", "verify", "--json", index.toString(), copy.toString());
        assertEquals(1, changed.exitCode(), changed.stderr());
        JsonNode found = new ObjectMapper().readTree(changed.stdout());
        assertFalse(found.get("matches").asBoolean());
        assertEquals("it was changed: its change time moved (a write, rename, touch, chmod or link)",
                found.get("identity_difference").asText(), "the same size and modification time do not hide it");
        assertEquals(1, found.get("mismatched_blocks").asLong());
        assertEquals(42, found.get("first_mismatched_block").asLong());

        bytes[42 * PAGE + 7] ^= 0x10;
        Files.write(copy, bytes);
        Files.setLastModifiedTime(copy, FileTime.fromMillis(mtime.toMillis() + 60_000));
        Samepage.Run touched = Samepage.run("index", "verify", index.toString(), copy.toString());
        assertEquals(1, touched.exitCode(), touched.stderr());
        assertTrue(touched.stdout().contains("differs: it was modified: its modification time moved"), touched.stdout());
        assertTrue(touched.stdout().contains("all 101 block digests match"), touched.stdout());
    }

    @Test
    void aCorruptIndexIsRefusedWithOneLineNamingIt() throws Exception {
        Path index = build(image, "corrupt.idx");
        byte[] bytes = Files.readAllBytes(index);
        bytes[bytes.length - 100] ^= 1;
        Files.write(index, bytes);
        Samepage.Run run = Samepage.run("index", "inspect", index.toString());
        assertEquals(2, run.exitCode(), run.stderr());
        assertEquals("", run.stdout());
        assertEquals(1, run.stderr().lines().count(), run.stderr());
        assertTrue(run.stderr().startsWith("samepage index inspect: " + index + ": corrupt index: "), run.stderr());
        Samepage.Run verify = Samepage.run("index", "verify", index.toString(), image.toString());
        assertEquals(2, verify.exitCode(), verify.stderr());
        assertEquals(1, verify.stderr().lines().count(), verify.stderr());
    }

    @Test
    void aFileThatIsNotAnIndexIsRefused() throws Exception {
        Samepage.Run run = Samepage.run("index", "inspect", image.toString());
        assertEquals(2, run.exitCode(), run.stderr());
        assertEquals("samepage index inspect: " + image + ": not a Samepage index (no SAMEPIDX magic number at "
                + "its start)\n", run.stderr());
        assertEquals("", run.stdout());
    }

    @Test
    void badSourcesAndOutputsExitTwoWithOneLine() throws Exception {
        Path missing = dir.resolve("missing.img");
        Samepage.Run run = Samepage.run("index", "build", missing.toString(), "-o", dir.resolve("x.idx").toString());
        assertEquals(2, run.exitCode());
        assertEquals("samepage index build: " + missing + ": no such file or directory\n", run.stderr());
        assertEquals("", run.stdout());
        Path empty = Files.createFile(dir.resolve("empty.img"));
        run = Samepage.run("index", "build", empty.toString(), "-o", dir.resolve("y.idx").toString());
        assertEquals(2, run.exitCode());
        assertEquals("samepage index build: " + empty + ": the file is empty\n", run.stderr());
        Path nowhere = dir.resolve("no-such-dir/z.idx");
        run = Samepage.run("index", "build", image.toString(), "-o", nowhere.toString());
        assertEquals(2, run.exitCode());
        assertEquals("samepage index build: " + nowhere + ": the directory " + nowhere.getParent()
                + " does not exist\n", run.stderr());
    }

    @Test
    void helpExplainsEachSubcommandAndOption() throws Exception {
        Samepage.Run index = Samepage.run("index", "--help");
        assertEquals(0, index.exitCode(), index.stderr());
        for (String text : List.of("build", "inspect", "verify", "Exit codes:")) {
            assertTrue(index.stdout().contains(text), text + " in " + index.stdout());
        }
        Samepage.Run build = Samepage.run("index", "build", "--help");
        assertEquals(0, build.exitCode(), build.stderr());
        for (String text : List.of("--output=FILE", "SOURCE", "progress bar", "atomically", "Exit codes:")) {
            assertTrue(build.stdout().contains(text), text + " in " + build.stdout());
        }
    }
}
