package io.samepage.cli.kvm;

import io.samepage.kvm.KvmSelftest;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.samepage.kvm.Kvm;
import java.io.PrintWriter;
import java.io.StringWriter;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import picocli.CommandLine;

/**
 * {@code samepage kvm selftest} in this JVM: on a host where KVM can create a VM, guests merge, write
 * through copy-on-write exits and each sees its own bytes (exit 0); a bad guest count is bad usage.
 */
class SelftestCommandTest {

    private record Run(int exitCode, String stdout, String stderr) {
    }

    private static Run run(String... args) {
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        CommandLine commandLine = new CommandLine(new KvmCommand());
        commandLine.setOut(new PrintWriter(out, true));
        commandLine.setErr(new PrintWriter(err, true));
        return new Run(commandLine.execute(args), out.toString(), err.toString());
    }

    @Test
    void fewerThanTwoGuestsIsBadUsage() {
        Run run = run("selftest", "--guests", "1");
        assertEquals(2, run.exitCode());
        assertTrue(run.stderr().contains("--guests must be 2 to 32"), run.stderr());
    }

    @Test
    @Tag("kvm")
    @Timeout(120)
    void guestsMergeBreakSharingOnWriteAndEachSeesItsOwnBytes() throws Exception {
        String unavailable = Kvm.unavailableReason();
        assumeTrue(unavailable == null, () -> "skipped: no usable KVM here: " + unavailable);
        Run run = run("selftest", "--guests", "3", "--json");
        assertEquals(0, run.exitCode(), run.stderr());
        JsonNode report = new ObjectMapper().readTree(run.stdout());
        assertTrue(report.get("every_guest_saw_its_own_bytes").asBoolean());
        assertEquals(0, report.get("wrong_bytes").asLong());
        long before = report.get("before_merging").get("memfd_allocated_bytes").asLong();
        long after = report.get("after_merging").get("memfd_allocated_bytes").asLong();
        assertTrue(after < before / 2, "the memfd's memory drops: " + before + " -> " + after);
        assertEquals(3L * KvmSelftest.WRITTEN_PAGES.length, report.get("copy_on_write_exits").asLong());
        assertEquals(0, report.get("pages_hashed_idle_full_scan").asLong(), "an idle guest costs no hashing");
        assertEquals(3L * KvmSelftest.WRITTEN_PAGES.length, report.get("pages_hashed_full_scan_after_writes").asLong(),
                "only the pages written are rehashed");
    }
}
