package io.samepage.e2e;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.SplittableRandom;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code samepage scan} through the launcher, on three 1 MiB dumps with known duplication: 128 pages
 * identical in all three (at a different offset in each) and 128 pages unique to each.
 */
class ScanEndToEndTest {

    private static final int PAGE = 4096;
    private static final int SHARED = 128;
    private static final int UNIQUE = 128;

    /** The counter names of ARCHITECTURE.md, then pages_total, metadata_bytes and guests. */
    private static final Set<String> TOP_LEVEL = Set.of("pages_shared", "pages_sharing", "pages_unshared",
            "pages_volatile", "full_scans", "pages_scanned", "pages_skipped", "ksm_zero_pages", "stable_node_chains",
            "stable_node_dups", "general_profit", "pages_total", "metadata_bytes", "guests");

    @TempDir
    static Path dir;

    private static final List<String> dumps = new ArrayList<>();

    @BeforeAll
    static void writeDumps() throws IOException {
        SplittableRandom random = new SplittableRandom(42);
        byte[][] shared = new byte[SHARED][PAGE];
        for (byte[] page : shared) {
            random.nextBytes(page);
        }
        for (int d = 0; d < 3; d++) {
            byte[] dump = new byte[(SHARED + UNIQUE) * PAGE];
            random.nextBytes(dump);
            for (int s = 0; s < SHARED; s++) {
                int at = (s * 2 + d) % (SHARED + UNIQUE);
                System.arraycopy(shared[s], 0, dump, at * PAGE, PAGE);
            }
            dumps.add(Files.write(dir.resolve("vm" + d + ".img"), dump).toString());
        }
    }

    private static JsonNode scan(String... options) throws Exception {
        List<String> args = new ArrayList<>(List.of("scan", "--json"));
        args.addAll(List.of(options));
        args.addAll(dumps);
        return Samepage.json(args.toArray(String[]::new));
    }

    @Test
    void pagesIdenticalInThreeDumpsShareOneFrameEach() throws Exception {
        JsonNode c = scan();
        Set<String> names = new HashSet<>();
        c.fieldNames().forEachRemaining(names::add);
        assertEquals(TOP_LEVEL, names);
        assertEquals(SHARED, c.get("pages_shared").asLong());
        assertEquals(2 * SHARED, c.get("pages_sharing").asLong());
        assertEquals(3 * UNIQUE, c.get("pages_unshared").asLong());
        assertEquals(0, c.get("pages_volatile").asLong());
        assertEquals(0, c.get("pages_skipped").asLong());
        assertEquals(0, c.get("ksm_zero_pages").asLong());
        assertEquals(0, c.get("stable_node_chains").asLong());
        assertEquals(0, c.get("stable_node_dups").asLong());
        assertEquals(768, c.get("pages_total").asLong());
        assertTrue(c.get("full_scans").asLong() >= 3, "a full scan to hash, one to merge, two that change nothing");
        assertEquals(768 * c.get("full_scans").asLong(), c.get("pages_scanned").asLong());
        long metadata = c.get("metadata_bytes").asLong();
        assertTrue(metadata > 0);
        assertEquals(2L * SHARED * PAGE - metadata, c.get("general_profit").asLong());

        JsonNode guests = c.get("guests");
        assertEquals(3, guests.size());
        for (int g = 0; g < 3; g++) {
            JsonNode guest = guests.get(g);
            assertEquals(dumps.get(g), guest.get("name").asText());
            assertEquals(guests.get(0).get("domain").asText(), guest.get("domain").asText());
            assertEquals(SHARED + UNIQUE, guest.get("pages_total").asLong());
            assertEquals(SHARED, guest.get("merging_pages").asLong());
            assertEquals(0, guest.get("zero_pages").asLong());
            long profit = guest.get("profit").asLong();
            assertTrue(profit > 0 && profit < (long) SHARED * PAGE, "profit " + profit + " nets the page table");
        }
    }

    @Test
    void aDomainPerSourceSharesNothing() throws Exception {
        JsonNode c = scan("--domain-per-source");
        assertEquals(0, c.get("pages_shared").asLong());
        assertEquals(0, c.get("pages_sharing").asLong());
        assertEquals(768, c.get("pages_unshared").asLong());
        Set<String> domains = new HashSet<>();
        for (JsonNode guest : c.get("guests")) {
            assertEquals(0, guest.get("merging_pages").asLong());
            domains.add(guest.get("domain").asText());
        }
        assertEquals(3, domains.size());
    }

    @Test
    void maxPageSharingTwoLeavesTheThirdCopyOfEachSharedPageUnshared() throws Exception {
        // Three copies of each shared page at max_page_sharing 2: one full frame, and the third copy has no
        // partner to start a second frame with, so KSM leaves it unshared (ksm_tests.c's leftover case).
        JsonNode c = scan("--max-page-sharing", "2");
        assertEquals(SHARED, c.get("pages_shared").asLong());
        assertEquals(SHARED, c.get("pages_sharing").asLong());
        assertEquals(0, c.get("stable_node_chains").asLong());
        assertEquals(0, c.get("stable_node_dups").asLong());
        JsonNode all = scan();
        assertEquals(all.get("pages_unshared").asLong() + SHARED, c.get("pages_unshared").asLong(),
                "the leftover copies are unshared");
    }

    @Test
    void humanOutputIsATableWithOneRowPerGuest() throws Exception {
        List<String> args = new ArrayList<>(List.of("scan"));
        args.addAll(dumps);
        Samepage.Run run = Samepage.run(args.toArray(String[]::new));
        assertEquals(0, run.exitCode(), run.stderr());
        assertTrue(run.stdout().matches("(?s).*\\npages_sharing +256\\n.*"), run.stdout());
        assertTrue(run.stdout().contains("saved: 1.00 MiB of guest memory"), run.stdout());
        for (String dump : dumps) {
            assertTrue(run.stdout().matches("(?s).*\\n" + dump + " +shared +256 +128 +0 +\\d+\\n.*"), run.stdout());
        }
    }

    @Test
    void eachBadSourceExitsTwoWithOneLineNamingItAndLoadsNothing() throws Exception {
        Path missing = dir.resolve("missing.img");
        Path empty = Files.createFile(dir.resolve("empty.img"));
        Path odd = Files.write(dir.resolve("odd.img"), new byte[4097]);
        Path directory = Files.createDirectory(dir.resolve("a-directory"));
        assertBadSource(missing, "no such file");
        assertBadSource(empty, "is empty (0 bytes)");
        assertBadSource(odd, "length 4097 is not a multiple of 4096");
        assertBadSource(directory, "is a directory, not a memory dump");
    }

    @Test
    void helpExplainsEachOptionAndExitsZero() throws Exception {
        Samepage.Run run = Samepage.run("scan", "--help");
        assertEquals(0, run.exitCode(), run.stderr());
        assertTrue(run.stdout().startsWith("Usage: samepage scan"), run.stdout());
        for (String option : List.of("--json", "--max-page-sharing", "--use-zero-pages", "--domain-per-source",
                "--pool-mib", "Default: 256", "Exit codes:")) {
            assertTrue(run.stdout().contains(option), option + " in " + run.stdout());
        }
    }

    /**
     * A pool the host will not map, here one larger than the address space {@code ulimit -v} leaves the
     * JVM, is the host's refusal: one line naming the pool's size and the limit, exit 1; not an internal
     * error (exit 70, "a bug in samepage"), as it was when the mapping's failure escaped as an
     * IllegalStateException.
     */
    @Test
    void aPoolTheHostWillNotMapExitsOneWithOneLineNamingIt() throws Exception {
        Path out = dir.resolve("refused.out");
        Path err = dir.resolve("refused.err");
        ProcessBuilder builder = new ProcessBuilder("bash", "-c", "ulimit -v 3000000 && exec \"$0\" \"$@\"",
                Samepage.root().resolve("samepage").toString(), "scan", "--pool-mib", "4000", dumps.getFirst());
        builder.environment().put("SAMEPAGE_JAVA_OPTS",
                "-Xmx128m -XX:ReservedCodeCacheSize=64m -XX:CompressedClassSpaceSize=64m");
        Process process = builder.directory(Samepage.root().toFile()).redirectOutput(out.toFile())
                .redirectError(err.toFile()).redirectInput(ProcessBuilder.Redirect.from(new java.io.File("/dev/null")))
                .start();
        assertTrue(process.waitFor(120, java.util.concurrent.TimeUnit.SECONDS), "finished");
        String stderr = Files.readString(err);
        assertEquals(1, process.exitValue(), stderr);
        assertEquals(1, stderr.lines().count(), stderr);
        assertTrue(stderr.startsWith("samepage scan: mmap of 4196397056 bytes (4001 MiB) for the frame pool failed "
                + "with errno 12: ENOMEM, the address space (ulimit -v)"), stderr);
        assertEquals("", Files.readString(out));
    }

    /** A good dump first, then {@code bad}: every source is checked before any is loaded. */
    private static void assertBadSource(Path bad, String what) throws Exception {
        Samepage.Run run = Samepage.run("scan", "--json", dumps.getFirst(), bad.toString());
        assertEquals(2, run.exitCode(), run.stderr());
        assertEquals("samepage scan: " + bad + ": " + what + "\n", run.stderr());
        assertEquals("", run.stdout());
    }
}
