package io.samepage.core;

/**
 * KSM's scan-time advisor ({@code advisor_mode=scan-time}), simplified: at the end of each full scan the
 * {@link Scanner} scales {@code pages_to_scan} by how far that scan was from the target time, caps it so
 * the scanner's CPU share stays under {@code advisor_max_cpu}, and moves 30% of the way there (KSM also
 * smooths with an EWMA); the knobs then clamp it to the advisor's range ({@link ScanKnobs#advisePagesToScan}).
 */
final class ScanTimeAdvisor {

    private ScanTimeAdvisor() {
    }

    /** The advisor's rule as a pure function of the last full scan (before the knobs' min/max clamp). */
    static int advisedPagesToScan(int current, long wallNanos, long cpuNanos, long targetSeconds, int maxCpuPercent) {
        if (wallNanos <= 0) {
            return current;
        }
        double proposed = (double) current * wallNanos / (targetSeconds * 1e9);
        double cpuShare = cpuNanos > 0 ? (double) cpuNanos / wallNanos : 0;
        if (cpuShare > 0) {
            proposed = Math.min(proposed, current * (maxCpuPercent / 100.0) / cpuShare);
        }
        return (int) Math.min(Integer.MAX_VALUE, Math.round(0.3 * proposed + 0.7 * current));
    }
}
