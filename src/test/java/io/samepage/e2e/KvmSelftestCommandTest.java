package io.samepage.e2e;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * {@code samepage kvm selftest} through the launcher: real KVM guests on mapped guest memory, merged,
 * written and checked. Skipped, with the command's own one-line reason, where {@code /dev/kvm} cannot
 * create a VM (the command's exit code 4).
 */
@Tag("kvm")
class KvmSelftestCommandTest {

    private static final int EXIT_KVM_UNAVAILABLE = 4;

    @Test
    void selftestMergesGuestsAndEveryGuestSeesItsOwnBytes() throws Exception {
        Samepage.Run run = Samepage.run("kvm", "selftest", "--guests", "3", "--json");
        Assumptions.assumeFalse(run.exitCode() == EXIT_KVM_UNAVAILABLE, () -> "no usable KVM: " + run.stderr().strip());
        assertEquals(0, run.exitCode(), run.stderr());
        JsonNode report = new ObjectMapper().readTree(run.stdout());
        assertTrue(report.get("every_guest_saw_its_own_bytes").asBoolean(), run.stdout());
        long before = report.get("before_merging").get("memfd_allocated_bytes").asLong();
        long after = report.get("after_merging").get("memfd_allocated_bytes").asLong();
        assertTrue(after < before / 2, "memfd allocated bytes before merging " + before + ", after " + after);
        assertEquals(12, report.get("copy_on_write_exits").asLong(), "4 writes to merged pages by each of 3 guests");
        assertEquals(0, report.get("pages_hashed_idle_full_scan").asLong(), "the dirty log spares idle pages");
    }

    @Test
    void oneGuestIsBadUsage() throws Exception {
        Samepage.Run run = Samepage.run("kvm", "selftest", "--guests", "1");
        assertEquals(2, run.exitCode(), run.stderr());
        assertTrue(run.stderr().contains("--guests must be 2 to 32"), run.stderr());
    }
}
