package io.samepage.e2e;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import com.fasterxml.jackson.databind.JsonNode;
import io.samepage.testing.ChildJvm;
import io.samepage.testing.MergeableChild;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * Reading a process must not undo kernel KSM's work. Pinning a page read-only (what
 * {@code process_vm_readv} does) makes the kernel give the reader an exclusive copy of a KSM page first,
 * so a scan after KSM, or the policy loop's estimate every interval, unmerged every merged page it read:
 * the process's {@code Pss_Anon} grew back by what KSM had saved. This test merges a child's 16 MiB of one
 * content with the real kernel KSM, stops KSM (merged pages stay merged), runs {@code samepage scan
 * --pid} on it, and checks that its {@code Pss_Anon} did not grow.
 */
class ScanLeavesKsmMergesTest {

    private static final long MERGED_KIB = MergeableChild.PAGES * 4L;

    @Test
    void scanningAMergedProcessLeavesItsPagesMerged() throws Exception {
        assertTrue(Files.isDirectory(HostKsm.DIRECTORY), "this test needs kernel KSM at " + HostKsm.DIRECTORY);
        HostKsm.withLock(() -> {
            Map<String, String> saved = HostKsm.knobs();
            try (ChildJvm child = ChildJvm.start(MergeableChild.class)) {
                HostKsm.write("run", "2");
                HostKsm.write("pages_to_scan", "5000");
                HostKsm.write("sleep_millisecs", "0");
                HostKsm.write("run", "1");
                long deadline = System.nanoTime() + 120_000_000_000L;
                while (HostKsm.ksmStat(child.pid()).getOrDefault("ksm_merging_pages", 0L) < MergeableChild.PAGES) {
                    if (System.nanoTime() > deadline) {
                        fail("kernel KSM did not merge the child's pages in 120 s: " + HostKsm.ksmStat(child.pid()));
                    }
                    Thread.sleep(100);
                }
                HostKsm.write("run", "0");
                long before = pssAnonKib(child.pid());

                JsonNode scan = Samepage.json("scan", "--json", "--pid", Integer.toString(child.pid()));
                assertTrue(scan.path("pages_read").asLong() >= MergeableChild.PAGES,
                        "the scan read the merged pages: " + scan.path("pages_read"));

                long after = pssAnonKib(child.pid());
                assertTrue(after - before < MERGED_KIB / 4, "Pss_Anon grew from " + before + " kB to " + after
                        + " kB: the scan unmerged the " + MERGED_KIB + " kB KSM had merged");
                assertEquals(MergeableChild.PAGES, HostKsm.ksmStat(child.pid()).get("ksm_merging_pages"));
            } finally {
                HostKsm.restore(saved);
            }
        });
    }

    private static long pssAnonKib(int pid) throws Exception {
        for (String line : Files.readAllLines(Path.of("/proc", Integer.toString(pid), "smaps_rollup"))) {
            if (line.startsWith("Pss_Anon:")) {
                return Long.parseLong(line.substring("Pss_Anon:".length()).replace("kB", "").trim());
            }
        }
        throw new IllegalStateException("no Pss_Anon in /proc/" + pid + "/smaps_rollup");
    }
}
