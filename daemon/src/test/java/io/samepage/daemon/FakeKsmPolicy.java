package io.samepage.daemon;

import io.samepage.host.KernelKsm;
import io.samepage.host.KsmPolicyLoop;
import io.samepage.host.MergeableEstimate;
import io.samepage.host.MergeableProcesses;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/**
 * What the daemon's tests of {@code ksm_policy} run the policy loop on, never the host's: a fake
 * {@code /proc} beside a fake KSM directory ({@link io.samepage.testing.KsmSysfs}), and a loop over them
 * whose estimate is one QEMU guest worth merging and whose ksmd uses no CPU.
 */
final class FakeKsmPolicy {

    /** 40% duplicates of 100,000 resident pages: worth merging. */
    static final MergeableEstimate.Potential RICH =
            new MergeableEstimate.Potential(100_000, 50_000, 1_000, 1, 20_000, 0, 0, 0, 256, false);
    private static final MergeableProcesses.Found ONE_GUEST = new MergeableProcesses.Found(List.of(
            new MergeableProcesses.Process(4242, "qemu-system-x86", List.of(), 100_000L * 4096, 0)), 10, 0, false);

    private FakeKsmPolicy() {
    }

    /** {@code dir/proc}, made, with a {@code meminfo} of 16 GiB, 12 GiB of it free. */
    static Path proc(Path dir) throws IOException {
        Path proc = Files.createDirectories(dir.resolve("proc"));
        Files.writeString(proc.resolve("meminfo"), "MemTotal: 16777216 kB\nMemFree: 12582912 kB\n");
        return proc;
    }

    /** A policy loop's context over the KSM directory {@code ksm} and {@code proc}, estimating {@link #RICH}. */
    static KsmPolicyLoop.Context loop(Path ksm, Path proc) {
        return new KsmPolicyLoop.Context().ksm(new KernelKsm(ksm, proc))
                .estimator((kernel, budget, mps, zero) -> new KsmPolicyLoop.Estimate(ONE_GUEST, RICH)).ksmdCpu(() -> 0);
    }
}
