package io.samepage.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code samepage similar} over the sketches of {@code samepage scan --json}, written to files. */
class SimilarCommandTest {

    private static final int PAGE = 4096;

    @TempDir
    Path dir;

    /** Dump a holds contents 0..99, b contents 60..159, c contents 200..219: a and b share 40. */
    @Test
    void pairsFromTwoScansOfDifferentHostsShareWhatTheirPagesShare() throws IOException {
        Path first = scan("first.json", dump("a", 0, 100), dump("b", 60, 100));
        Path second = scan("second.json", dump("c", 200, 20));
        CliRun run = CliRun.of("similar", "--json", first.toString(), second.toString());
        assertEquals(0, run.exitCode(), run.stderr());
        JsonNode pairs = new ObjectMapper().readTree(run.stdout()).get("pairs");
        assertEquals(3, pairs.size());
        assertEquals(40, pairs.get(0).get("shared_pages").asLong(), pairs.toString());
        assertEquals(0, pairs.get(1).get("shared_pages").asLong());
        assertEquals(0, pairs.get(2).get("shared_pages").asLong());
        assertTrue(pairs.get(0).get("guest_a").asText().endsWith("first.json:" + dir.resolve("a")), pairs.toString());
    }

    /**
     * One guest has no pair, and --json still prints its 'pairs' array (it printed '{ }'); a file given
     * twice is refused (its guests were each paired with themselves, every page shared).
     */
    @Test
    void oneGuestHasAnEmptyPairsArrayAndAFileGivenTwiceIsRefused() throws IOException {
        Path one = scan("one.json", dump("a", 0, 10));
        CliRun alone = CliRun.of("similar", "--json", one.toString());
        assertEquals(0, alone.exitCode(), alone.stderr());
        JsonNode pairs = new ObjectMapper().readTree(alone.stdout()).get("pairs");
        assertTrue(pairs != null && pairs.isArray() && pairs.isEmpty(), alone.stdout());
        CliRun twice = CliRun.of("similar", one.toString(), dir.resolve(".").resolve("one.json").toString());
        assertEquals(2, twice.exitCode(), twice.stderr());
        assertEquals("samepage similar: " + dir.resolve(".").resolve("one.json") + ": given more than once\n",
                twice.stderr());
    }

    @Test
    void filesWithoutSketchesAreRefusedWithOneLine() throws IOException {
        Path noSketch = Files.writeString(dir.resolve("empty.json"), "{\"guests\": []}");
        Path notJson = Files.writeString(dir.resolve("text.json"), "pages_shared 3\n");
        for (Path bad : new Path[] {noSketch, notJson, dir.resolve("missing.json"), dir}) {
            CliRun run = CliRun.of("similar", bad.toString());
            assertEquals(2, run.exitCode(), bad + ": " + run.stderr());
            assertEquals(1, run.stderr().lines().count(), run.stderr());
            assertTrue(run.stderr().startsWith("samepage similar: " + bad), run.stderr());
        }
    }

    /** A sketch written before sketches named their page hash (XXH3-64) beside one of today's: refused. */
    @Test
    void sketchesOfTwoPageHashesAreRefusedWithOneLine() throws IOException {
        Path now = scan("now.json", dump("a", 0, 10));
        Path old = Files.writeString(dir.resolve("old.json"),
                "{\"guests\": [{\"name\": \"x\", \"sketch\": {\"k\": 256, \"pages\": 2, \"values\": [\"5\", \"9\"]}}]}");
        CliRun run = CliRun.of("similar", now.toString(), old.toString());
        assertEquals(2, run.exitCode(), run.stderr());
        assertEquals("samepage similar: " + old + ": a sketch of page hash xxh3-64 does not compare with one of "
                + "nh-public-1 (scan every guest with one samepage version)\n", run.stderr());
        assertEquals("", run.stdout());
        Path older = Files.writeString(dir.resolve("older.json"), Files.readString(old));
        assertEquals(0, CliRun.of("similar", old.toString(), older.toString()).exitCode(), "one hash compares with itself");
    }

    @Test
    void aSketchThatIsNotOneIsRefusedWithOneLine() throws IOException {
        Path bad = Files.writeString(dir.resolve("bad.json"),
                "{\"guests\": [{\"name\": \"x\", \"sketch\": {\"hash\": \"nh-public-1\", \"values\": [\"zz\"]}}]}");
        CliRun run = CliRun.of("similar", bad.toString());
        assertEquals(2, run.exitCode(), run.stderr());
        assertEquals("samepage similar: " + bad + ": sketch value 0 'zz' is not 64-bit hex\n", run.stderr());
    }

    /**
     * Bytes Jackson reads as UTF-32 (a NUL first) that are not (found by {@code SimilarInputFuzzTest}):
     * refused as not JSON, naming the file; the message used to be Jackson's alone.
     */
    @Test
    void bytesThatAreNotUtf32AreRefusedAsNotJsonNamingTheFile() throws IOException {
        Path bad = Files.write(dir.resolve("utf32.json"), new byte[] {0, 0, 0, '{', 'u', 'f', '"', 0, 0, 0, 0, 0});
        CliRun run = CliRun.of("similar", bad.toString());
        assertEquals(2, run.exitCode(), run.stderr());
        assertEquals("samepage similar: " + bad + ": not JSON written by 'samepage scan --json'\n", run.stderr());
    }

    /** What a file quotes cannot break the error line or reach the terminal as a control sequence. */
    @Test
    void aValueWithALineBreakOrAnEscapeIsQuotedOnOneLine() throws IOException {
        Path bad = Files.writeString(dir.resolve("bad.json"), "{\"guests\": [{\"name\": \"x\", \"sketch\": "
                + "{\"hash\": \"nh-public-1\", \"values\": [\"12\\n\\u001b[2Jzz\"]}}]}");
        CliRun run = CliRun.of("similar", bad.toString());
        assertEquals(2, run.exitCode(), run.stderr());
        assertEquals("samepage similar: " + bad + ": sketch value 0 '12\\x0a\\x1b[2Jzz' is not 64-bit hex\n",
                run.stderr());
    }

    /** A guest named with a line break and an escape sequence: its pair's row stays one line, escaped. */
    @Test
    void aGuestNameWithControlCharactersIsPrintedEscaped() throws IOException {
        String sketch = "{\"hash\": \"nh-public-1\", \"pages\": 2, \"values\": [\"5\", \"9\"]}";
        Path file = Files.writeString(dir.resolve("names.json"), "{\"guests\": [{\"name\": \"a\\n\\u001b[31m\", "
                + "\"sketch\": " + sketch + "}, {\"name\": \"b\", \"sketch\": " + sketch + "}]}");
        CliRun run = CliRun.of("similar", file.toString());
        assertEquals(0, run.exitCode(), run.stderr());
        assertEquals(2, run.stdout().lines().count(), run.stdout());
        assertTrue(run.stdout().contains(file + ":a\\x0a\\x1b[31m  "), run.stdout());
        assertTrue(run.stdout().chars().noneMatch(c -> c == 0x1b), run.stdout());
    }

    private Path scan(String name, Path... dumps) throws IOException {
        String[] args = new String[dumps.length + 2];
        args[0] = "scan";
        args[1] = "--json";
        for (int i = 0; i < dumps.length; i++) {
            args[i + 2] = dumps[i].toString();
        }
        CliRun run = CliRun.of(args);
        assertEquals(0, run.exitCode(), run.stderr());
        return Files.writeString(dir.resolve(name), run.stdout());
    }

    /** A dump of {@code count} distinct pages, contents numbered from {@code first}. */
    private Path dump(String name, int first, int count) throws IOException {
        byte[] bytes = new byte[count * PAGE];
        for (int p = 0; p < count; p++) {
            byte[] page = new byte[PAGE];
            new SplittableRandom(1_000 + first + p).nextBytes(page);
            System.arraycopy(page, 0, bytes, p * PAGE, PAGE);
        }
        return Files.write(dir.resolve(name), bytes);
    }
}
