package io.samepage.core;

/**
 * One guest's counters, named as Linux's {@code /proc/PID/ksm_stat}.
 *
 * @param name          the guest
 * @param domain        its merge domain
 * @param pagesTotal    guest pages (its size / 4 KiB)
 * @param mergingPages  pages that map a shared (stable) frame: KSM's {@code ksm_merging_pages}
 * @param zeroPages     pages mapped to the zero frame by {@code use_zero_pages}: {@code ksm_zero_pages}
 * @param profit        {@code (mergingPages + zeroPages) * 4096 - } this guest's metadata bytes: {@code ksm_process_profit}
 */
public record GuestCounters(String name, String domain, long pagesTotal, long mergingPages, long zeroPages,
        long profit) {
}
