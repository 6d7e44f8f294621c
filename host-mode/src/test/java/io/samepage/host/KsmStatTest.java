package io.samepage.host;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code /proc/PID/ksm_stat}: parsing every line, and saying why there is none. */
class KsmStatTest {

    /** Linux 6.18's ksm_stat of a process with merged pages. */
    static final String MERGING = """
            ksm_rmap_items 32768
            ksm_zero_pages 12
            ksm_merging_pages 16384
            ksm_process_profit 65011712
            ksm_merge_any: no
            ksm_mergeable: yes
            """;

    @TempDir
    Path proc;

    @Test
    void everyLineIsReadTheKnownOnesAsNumbersAndTheOthersAsTheyAre() {
        KsmStat stat = KsmStat.parse(42, MERGING + "ksm_future_line 7 pages\n");
        assertTrue(stat.present());
        assertEquals(42, stat.pid());
        assertEquals(32768, stat.rmapItems().orElseThrow());
        assertEquals(12, stat.zeroPages().orElseThrow());
        assertEquals(16384, stat.mergingPages().orElseThrow());
        assertEquals(65011712, stat.processProfit().orElseThrow());
        assertEquals("no", stat.values().get("ksm_merge_any"));
        assertEquals("7 pages", stat.values().get("ksm_future_line"));
        assertEquals(List.of("ksm_rmap_items", "ksm_zero_pages", "ksm_merging_pages", "ksm_process_profit",
                "ksm_merge_any", "ksm_mergeable", "ksm_future_line"), List.copyOf(stat.values().keySet()));
        assertTrue(stat.mergeable());
        assertTrue(stat.tellsMergeable());
    }

    @Test
    void aNegativeProfitIsANumber() {
        assertEquals(-4096, KsmStat.parse(1, "ksm_process_profit -4096\n").processProfit().orElseThrow());
    }

    @Test
    void mergeableComesFromTheMergeableLinesOrFromRmapItemsOnOlderKernels() {
        assertFalse(KsmStat.parse(1, "ksm_rmap_items 0\nksm_merge_any: no\nksm_mergeable: no\n").mergeable());
        assertTrue(KsmStat.parse(1, "ksm_rmap_items 0\nksm_merge_any: yes\nksm_mergeable: no\n").mergeable());
        KsmStat older = KsmStat.parse(1, "ksm_rmap_items 9\nksm_merging_pages 0\n");
        assertTrue(older.mergeable());
        assertFalse(older.tellsMergeable());
        KsmStat kernelThread = KsmStat.parse(2, "");
        assertTrue(kernelThread.present());
        assertEquals(Map.of(), kernelThread.values());
        assertFalse(kernelThread.mergeable());
    }

    @Test
    void anAbsentFileSaysWhetherTheProcessOrTheKernelLacksIt() throws IOException {
        KernelKsm ksm = new KernelKsm(proc.resolve("no-ksm"), proc);
        KsmStat gone = ksm.ksmStat(77);
        assertFalse(gone.present());
        assertEquals("no process 77 in " + proc, gone.absentReason().orElseThrow());
        assertTrue(gone.rmapItems().isEmpty());
        assertFalse(gone.mergeable());
        Files.createDirectories(proc.resolve("78"));
        assertEquals("this kernel has no " + proc.resolve("78/ksm_stat") + " (Linux 6.1 added ksm_stat)",
                ksm.ksmStat(78).absentReason().orElseThrow());
        Files.writeString(proc.resolve("78/ksm_stat"), MERGING);
        assertEquals(16384, ksm.ksmStat(78).mergingPages().orElseThrow());
    }
}
