package io.samepage.core;

/** KSM's {@code advisor_mode}: who chooses {@code pages_to_scan}. */
public enum AdvisorMode {
    /** The operator's {@code pages_to_scan} stands. */
    NONE,
    /**
     * The scanner steers {@code pages_to_scan} after every full scan so a full scan takes
     * {@code advisor_target_scan_time} seconds, without the scanner's CPU share going above
     * {@code advisor_max_cpu} percent (KSM's scan-time advisor, Linux 6.9).
     */
    SCAN_TIME
}
