package io.samepage.kvm;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** {@code kvm selftest}'s output from a made-up report (no KVM needed). */
class KvmSelftestReportTest {

    private static final KvmSelftest.Report REPORT = new KvmSelftest.Report(2, 1L << 20,
            new KvmSelftest.Memory(512, 2L << 20, 3L << 20), new KvmSelftest.Memory(257, 1L << 20, 1L << 20),
            new KvmSelftest.Memory(259, 1L << 20, 1L << 20), 255, 4, 0, 2, 2, 0, null,
            List.of(new KvmSelftest.GuestResult("vm-0", 1, List.of(65), List.of(65), 0),
                    new KvmSelftest.GuestResult("vm-1", 1, List.of(66), List.of(66), 0)));

    @Test
    void fieldsKeepTheirNamesAndOrder() {
        Map<String, Object> f = KvmSelftestReport.fields(REPORT);
        assertEquals(List.of("guests", "guest_bytes", "before_merging", "after_merging", "after_writes",
                "pages_sharing", "guest_mappings", "guest_mappings_per_gib", "copy_on_write_exits",
                "pages_hashed_idle_full_scan", "pages_hashed_full_scan_after_writes", "merging_stopped",
                "wrong_bytes", "every_guest_saw_its_own_bytes", "per_guest"), List.copyOf(f.keySet()));
        assertEquals(Map.of("host_frames", 257L, "memfd_allocated_bytes", 1L << 20, "rss_shmem_bytes", 1L << 20),
                f.get("after_merging"));
        assertEquals(2048L, f.get("guest_mappings_per_gib"));
        assertEquals(true, f.get("every_guest_saw_its_own_bytes"));
        assertEquals("vm-1", ((List<Map<?, ?>>) f.get("per_guest")).get(1).get("name"));
    }

    @Test
    void textSaysWhetherEveryGuestSawItsOwnBytes() {
        String text = KvmSelftestReport.text(REPORT);
        assertTrue(text.startsWith("KVM self-test: 2 guests of 1 MiB"), text);
        assertTrue(text.contains("pages_sharing after merging: 255\n"), text);
        assertTrue(text.endsWith("every guest saw its own bytes: yes\n"), text);
    }
}
