package io.samepage.host;

import java.util.List;

/**
 * The estimates the tests of the KSM policy decide on (the tuner, the policy, the policy loop and its
 * allocation fault scenario): one that pays, one that does not, and the one guest they come from.
 */
final class PolicyEstimates {

    /** 40% duplicates of 100,000 resident pages: 156.25 MiB to save, worth merging. */
    static final MergeableEstimate.Potential RICH =
            new MergeableEstimate.Potential(100_000, 50_000, 1_000, 1, 20_000, 0, 0, 0, 256, false);
    /** Almost nothing to merge: KSM goes off again. */
    static final MergeableEstimate.Potential THIN =
            new MergeableEstimate.Potential(100_000, 50_000, 0, 1, 100, 0, 0, 0, 256, false);
    /** One QEMU guest of 100,000 resident pages. */
    static final MergeableProcesses.Found ONE_GUEST = new MergeableProcesses.Found(List.of(
            new MergeableProcesses.Process(4242, "qemu-system-x86", List.of(), 100_000L * 4096, 0)), 10, 0, false);

    private PolicyEstimates() {
    }
}
