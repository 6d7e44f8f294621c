package io.samepage.e2e;

import static org.junit.jupiter.api.Assertions.assertAll;
import static org.junit.jupiter.api.Assertions.assertEquals;

import com.fasterxml.jackson.databind.JsonNode;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * {@code samepage scan --json} of memory dumps that reproduce the memory of two reference suites for Linux
 * KSM, asserting the counters those suites expect the kernel to report.
 *
 * <h2>Kernel selftest: tools/testing/selftests/mm/ksm_tests.c</h2>
 *
 * <p>{@code check_ksm_merge} fills {@code page_count} pages of one private anonymous mapping with {@code '*'}
 * ({@code allocate_memory(..., '*', ...)}), lets KSM run two full scans ({@code ksm_merge_pages}, "merging
 * occurs only after 2 scans") and checks {@code assert_ksm_pages_count(page_count)}. That function's rule,
 * for {@code N} duplicate pages and {@code max_page_sharing} {@code M}:
 * <ul>
 *   <li>if {@code N % M} is 0 or 1: {@code pages_shared == N / M} and
 *       {@code pages_sharing == pages_shared * (M - 1)} (a leftover single page has nothing to merge with);
 *   <li>otherwise: {@code pages_shared == N / M + 1} and {@code pages_sharing == N - pages_shared}.
 * </ul>
 * The file has no function named {@code check_max_page_sharing_limits}; the limit is exercised only through
 * {@code assert_ksm_pages_count}, which reads {@code max_page_sharing} from sysfs. Each case below is one dump
 * (one process) of {@code N} pages of {@code '*'} scanned with {@code --max-page-sharing M}. The selftest
 * checks only pages_shared and pages_sharing; the other counters asserted here follow from mm/ksm.c and
 * Documentation/admin-guide/mm/ksm.rst, named at each case: after convergence no page of a static dump is
 * volatile, so every page is in the stable tree (shared/sharing) or in the unstable tree (pages_unshared); a
 * stable node becomes a chain ({@code stable_node_chains}) with one dup per KSM page
 * ({@code stable_node_dups}) only when a second KSM page of the same content is inserted
 * ({@code stable_tree_insert}, {@code need_chain}); a lone leftover page never makes one, since a full dup
 * makes {@code stable_tree_search} return no match and the page waits in the unstable tree.
 *
 * <p>{@code check_ksm_zero_page_merge} does the same with pages filled with 0 and {@code use_zero_pages} 0 or
 * 1: {@code assert_ksm_pages_count(page_count)} when off, {@code assert_ksm_pages_count(0)} when on (the pages
 * map the kernel's zero page instead, counted in ksm_zero_pages). {@code samepage scan} does not load an
 * all-zero 1 MiB chunk of a dump (it could be never-written memory), while the selftest's memset writes each
 * page; so these dumps add one marker page of {@code '#'} to the zero pages, which makes the chunk loaded and
 * adds exactly one unique page (pages_unshared 1) and nothing to pages_shared or pages_sharing.
 *
 * <h2>LTP ksm01: testcases/kernel/mem/ksm</h2>
 *
 * <p>ksm01.c runs {@code create_same_memory(size, num, unit)} (ksm_test.h in current LTP; formerly
 * testcases/kernel/mem/lib/mem.c), with the defaults and bounds of ksm_common.h ({@code size = 128} MB,
 * {@code num = 3} processes, {@code unit = 1} MB; {@code parse_ksm_options} accepts any {@code size >= 1} and
 * {@code num >= 3}). It sets {@code max_page_sharing} to {@code size * pages * num} ({@code pages} = 4 KiB
 * pages per MB = 256), forks {@code num} children, and in each of four phases every child fills all its
 * {@code size} MB with one character ({@code ksm_child_memset}); child 0 uses {@code ksm_data0} = c, c, d,
 * d; child 1 {@code ksm_data1} = a, b, d, d-except-its-last-byte ('e', mergeable_size size*MB-1); child 2
 * {@code ksm_data2} = a, a, d, d; children from 3 on copy {@code ksm_data0}. After each phase
 * {@code ksm_group_check(run, pages_shared, pages_sharing, pages_volatile, pages_unshared, ...)} expects:
 * <ol start="0">
 *   <li>2, size*num*pages - 2, 0, 0
 *   <li>3, size*num*pages - 3, 0, 0
 *   <li>1, size*num*pages - 1, 0, 0
 *   <li>1, size*num*pages - 2, 0, 1
 * </ol>
 * Each phase here is {@code num} dumps, one per child and one guest each, all in the one merge domain (KSM
 * merges across processes), scanned with {@code --max-page-sharing size*pages*num}. Sizes are 1 and 2 MB
 * rather than LTP's default 128 MB to keep the run short; LTP's formulas are stated for any size and num.
 *
 * <p>What is not reproduced, and why: in LTP the same children go through the phases one after another, so
 * the kernel carries KSM pages from one phase into the next (writes break them by copy-on-write) and
 * {@code ksm_group_check} first waits for a full scan ({@code wait_ksmd_full_scan}) and stops ksmd while it
 * reads ({@code final_group_check}), because pages_volatile and pages_unshared seen mid-scan depend on
 * timing. A dump is static and {@code samepage scan} runs until two full scans change nothing, so each
 * phase is scanned afresh and only the values after convergence are asserted; pages_volatile is therefore
 * asserted as LTP's 0, which holds only after convergence. The checks of {@code run},
 * {@code sleep_millisecs} and {@code pages_to_scan} in {@code final_group_check} are knobs of ksmd, and the
 * unmerge ({@code run = 2}) and stop ({@code run = 0}) checks describe ksmd's modes; a scan of dumps has
 * neither.
 */
class KsmReferenceCountersTest {

    private static final int PAGE = 4096;
    /** LTP's {@code pages = TST_MB / ps} in create_same_memory. */
    private static final int PAGES_PER_MB = (1 << 20) / PAGE;

    @TempDir
    Path dir;

    /** Writes a dump of {@code pages} pages filled with {@code fill}. */
    private Path dump(String name, int pages, byte fill) throws IOException {
        byte[] memory = new byte[pages * PAGE];
        Arrays.fill(memory, fill);
        return Files.write(dir.resolve(name), memory);
    }

    private static JsonNode scan(List<String> options, List<Path> dumps) throws Exception {
        List<String> args = new ArrayList<>(List.of("scan", "--json"));
        args.addAll(options);
        dumps.forEach(d -> args.add(d.toString()));
        return Samepage.json(args.toArray(String[]::new));
    }

    /** Asserts every counter of {@code expected} (name to value) at once, so one run reports all mismatches. */
    private static void assertCounters(String what, Map<String, Long> expected, JsonNode c) {
        assertAll(what, expected.entrySet().stream().map(e -> () -> assertEquals(e.getValue().longValue(),
                c.get(e.getKey()).asLong(), what + ": " + e.getKey() + " in " + c)));
    }

    /**
     * assert_ksm_pages_count(dupl_page_count) of ksm_tests.c, as pages_shared and pages_sharing for {@code n}
     * duplicate pages under {@code max_page_sharing m}.
     */
    private static long[] selftestSharedAndSharing(long n, long m) {
        if (n % m == 0 || n % m == 1) {
            long shared = n / m;
            return new long[] {shared, shared * (m - 1)};
        }
        long shared = n / m + 1;
        return new long[] {shared, n - shared};
    }

    /**
     * ksm_tests.c {@code check_ksm_merge}: {@code n} pages of {@code '*'} in one process under
     * {@code max_page_sharing m}. pages_shared and pages_sharing: {@code assert_ksm_pages_count(n)}, checked
     * against the rule by {@link #selftestSharedAndSharing}. pages_unshared: the leftover single page of
     * {@code n % m == 1}, alone in the unstable tree (mm/ksm.c {@code unstable_tree_search_insert}), i.e.
     * {@code n - pages_shared - pages_sharing}. stable_node_chains / stable_node_dups: mm/ksm.c
     * {@code stable_tree_insert} makes a chain once a second KSM page of one content exists, with one dup per
     * KSM page; one KSM page stays a plain stable node (0 and 0).
     */
    @ParameterizedTest(name = "{0} pages of ''*'' at max_page_sharing {1}: shared {2}, sharing {3}, unshared {4}")
    @CsvSource({
        // n, m, shared, sharing, unshared, chains, dups
        // ksm_tests.c defaults: KSM_PAGE_COUNT_DEFAULT 10 pages, the kernel's default max_page_sharing 256.
        "10,  256, 1,   9,   0, 0, 0",
        // N = M: one full KSM page.
        "256, 256, 1, 255,   0, 0, 0",
        // N = M + 1: the brief's case; n % m == 1, the 257th page stays unshared.
        "257, 256, 1, 255,   1, 0, 0",
        // N = 2M: two full KSM pages of one content, a chain of two dups.
        "512, 256, 2, 510,   0, 1, 2",
        // N = 2M + 2: a third KSM page holding the 2-page remainder (n % m >= 2 branch).
        "514, 256, 3, 511,   0, 1, 3",
        // assert_ksm_pages_count's own comment: 11 pages and max_page_sharing 10, the 11th is not merged.
        "11,   10, 1,   9,   1, 0, 0",
        // 10 pages at max_page_sharing 4: 4 + 4 + 2, the n % m >= 2 branch.
        "10,    4, 3,   7,   0, 1, 3",
        // max_page_sharing 2 (its minimum), odd and even N; even N is N = k * M.
        "2,     2, 1,   1,   0, 0, 0",
        "3,     2, 1,   1,   1, 0, 0",
        "4,     2, 2,   2,   0, 1, 2",
        "5,     2, 2,   2,   1, 1, 2",
        "6,     2, 3,   3,   0, 1, 3",
        "7,     2, 3,   3,   1, 1, 3",
        // N = k * M with k = 3 at M = 3, and the n % m == 1 leftover after it.
        "9,     3, 3,   6,   0, 1, 3",
        "10,    3, 3,   6,   1, 1, 3",
    })
    void checkKsmMergeUnderMaxPageSharing(int n, int m, long shared, long sharing, long unshared, long chains,
            long dups) throws Exception {
        long[] rule = selftestSharedAndSharing(n, m);
        assertEquals(rule[0], shared, "this table's pages_shared is assert_ksm_pages_count's");
        assertEquals(rule[1], sharing, "this table's pages_sharing is assert_ksm_pages_count's");
        assertEquals(n - shared - sharing, unshared, "this table's pages_unshared is the rest of the pages");

        Path process = dump("selftest-" + n + "-" + m + ".img", n, (byte) '*');
        JsonNode c = scan(List.of("--max-page-sharing", Integer.toString(m)), List.of(process));
        assertCounters(n + " pages at max_page_sharing " + m, Map.of(
                "pages_shared", shared,
                "pages_sharing", sharing,
                "pages_unshared", unshared,
                "pages_volatile", 0L,
                "ksm_zero_pages", 0L,
                "stable_node_chains", chains,
                "stable_node_dups", dups,
                "pages_total", (long) n), c);
    }

    /**
     * ksm_tests.c {@code check_ksm_zero_page_merge} with use_zero_pages 0 (its default,
     * KSM_USE_ZERO_PAGES_DEFAULT false) and the kernel's default max_page_sharing 256: 10 zero pages
     * ({@code KSM_PAGE_COUNT_DEFAULT}) merge as usual, {@code assert_ksm_pages_count(10)}: pages_shared 1,
     * pages_sharing 9. The marker page (see the class comment) is the one unshared page.
     */
    @Test
    void checkKsmZeroPageMergeWithoutUseZeroPages() throws Exception {
        JsonNode c = scan(List.of(), List.of(zeroPagesAndMarker(10)));
        assertCounters("10 zero pages, use_zero_pages 0", Map.of(
                "pages_shared", 1L,
                "pages_sharing", 9L,
                "pages_unshared", 1L,
                "pages_volatile", 0L,
                "ksm_zero_pages", 0L), c);
    }

    /**
     * ksm_tests.c {@code check_ksm_zero_page_merge} with use_zero_pages 1 ({@code -z 1}):
     * {@code assert_ksm_pages_count(0)}, pages_shared 0 and pages_sharing 0. ksm_zero_pages 10: mm/ksm.c
     * {@code cmp_and_merge_page} maps each empty page to the zero page and counts it in ksm_zero_pages
     * (Documentation/admin-guide/mm/ksm.rst, ksm_zero_pages). The marker page is the one unshared page.
     */
    @Test
    void checkKsmZeroPageMergeWithUseZeroPages() throws Exception {
        JsonNode c = scan(List.of("--use-zero-pages"), List.of(zeroPagesAndMarker(10)));
        assertCounters("10 zero pages, use_zero_pages 1", Map.of(
                "pages_shared", 0L,
                "pages_sharing", 0L,
                "pages_unshared", 1L,
                "pages_volatile", 0L,
                "ksm_zero_pages", 10L), c);
    }

    private Path zeroPagesAndMarker(int zeroPages) throws IOException {
        byte[] memory = new byte[(zeroPages + 1) * PAGE];
        Arrays.fill(memory, zeroPages * PAGE, memory.length, (byte) '#');
        return Files.write(dir.resolve("selftest-zero-" + zeroPages + ".img"), memory);
    }

    /**
     * LTP ksm_test.h create_same_memory: ksm_data0, ksm_data1, ksm_data2, one character per phase; children
     * from 3 on copy ksm_data0.
     */
    private static final char[][] LTP_DATA = {
        {'c', 'c', 'd', 'd'},
        {'a', 'b', 'd', 'd'},
        {'a', 'a', 'd', 'd'},
    };

    /** LTP ksm_test.h create_same_memory, ksm_data1[3]: mergeable_size size*TST_MB - 1, the last byte 'e'. */
    private static boolean ltpEndsWithE(int child, int phase) {
        return child == 1 && phase == 3;
    }

    static Stream<Arguments> ltpPhases() {
        List<Arguments> phases = new ArrayList<>();
        for (int[] sizeAndNum : new int[][] {{1, 3}, {2, 4}}) {
            for (int phase = 0; phase < 4; phase++) {
                phases.add(Arguments.of(sizeAndNum[0], sizeAndNum[1], phase));
            }
        }
        return phases.stream();
    }

    /**
     * LTP ksm01 (create_same_memory in ksm_test.h): the memory of {@code num} children of {@code size} MB after
     * phase {@code phase}, and the counters the {@code ksm_group_check} after that phase expects. See the class
     * comment for what is and is not reproduced.
     */
    @ParameterizedTest(name = "ksm01 -s {0} -n {1}, phase {2}")
    @MethodSource("ltpPhases")
    void ltpKsm01Phase(int size, int num, int phase) throws Exception {
        long pages = PAGES_PER_MB;
        long all = (long) size * num * pages;
        // create_same_memory's four ksm_group_check calls: pages_shared, pages_sharing, pages_volatile,
        // pages_unshared.
        long[][] expected = {
            {2, all - 2, 0, 0},
            {3, all - 3, 0, 0},
            {1, all - 1, 0, 0},
            {1, all - 2, 0, 1},
        };
        List<Path> children = new ArrayList<>();
        for (int child = 0; child < num; child++) {
            char data = LTP_DATA[child < 3 ? child : 0][phase];
            byte[] memory = new byte[size * PAGES_PER_MB * PAGE];
            Arrays.fill(memory, (byte) data);
            if (ltpEndsWithE(child, phase)) {
                memory[memory.length - 1] = 'e';
            }
            children.add(Files.write(dir.resolve("ksm01-child" + child + "-phase" + phase + ".img"), memory));
        }
        // create_same_memory: max_page_sharing = size * pages * num.
        JsonNode c = scan(List.of("--max-page-sharing", Long.toString(all)), children);
        long[] e = expected[phase];
        assertCounters("ksm01 -s " + size + " -n " + num + " phase " + phase, Map.of(
                "pages_shared", e[0],
                "pages_sharing", e[1],
                "pages_volatile", e[2],
                "pages_unshared", e[3],
                "pages_total", all), c);
        assertEquals(num, c.get("guests").size(), "one guest per child");
        for (JsonNode guest : c.get("guests")) {
            assertEquals(c.get("guests").get(0).get("domain").asText(), guest.get("domain").asText(),
                    "all children in one merge domain");
        }
    }
}
