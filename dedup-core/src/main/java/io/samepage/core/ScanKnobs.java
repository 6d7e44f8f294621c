package io.samepage.core;

import io.samepage.core.DedupException.Kind;
import java.util.List;

/**
 * The scanner's knobs, named and validated as Linux KSM names and validates them in
 * {@code /sys/kernel/mm/ksm} (mm/ksm.c): a refused value throws {@link DedupException} saying why and
 * leaves the old value in place.
 *
 * <p>Thread safety: setters are synchronized; getters are volatile reads, safe from any thread. The
 * scanner reads each knob once per batch, so a change takes effect at the next batch; but each lookup
 * of the stable index reads {@code max_page_sharing} under its domain's lock, and it changes only while
 * every domain's lock is held ({@link SharedFrames}).
 */
public final class ScanKnobs {

    /** {@code run}: 0 stop, 1 run, 2 unmerge every merged page and stop. */
    public static final int RUN_STOP = 0;
    public static final int RUN_MERGE = 1;
    public static final int RUN_UNMERGE = 2;

    /** KSM's defaults (mm/ksm.c), except {@link #DEFAULT_RUN}. */
    public static final int DEFAULT_PAGES_TO_SCAN = 100;
    public static final long DEFAULT_SLEEP_MILLIS = 20;
    /** 1, not KSM's 0: an engine is made to merge. */
    public static final int DEFAULT_RUN = RUN_MERGE;
    public static final int DEFAULT_MAX_PAGE_SHARING = 256;
    public static final boolean DEFAULT_USE_ZERO_PAGES = false;
    public static final boolean DEFAULT_SMART_SCAN = true;
    public static final AdvisorMode DEFAULT_ADVISOR_MODE = AdvisorMode.NONE;
    public static final int DEFAULT_ADVISOR_MAX_CPU = 70;
    public static final long DEFAULT_ADVISOR_TARGET_SCAN_TIME_SECONDS = 200;
    public static final int DEFAULT_ADVISOR_MIN_PAGES_TO_SCAN = 500;
    public static final int DEFAULT_ADVISOR_MAX_PAGES_TO_SCAN = 30_000;
    /** One scanner thread, as KSM's one ksmd. */
    public static final int DEFAULT_SCAN_THREADS = 1;
    /** The most scanner threads: past the memory bandwidth of any host, threads only contend. */
    public static final int MAX_SCAN_THREADS = 64;

    /** Every knob's name, as {@code /sys/kernel/mm/ksm} names it; {@link #set} takes these. */
    public static final List<String> NAMES = List.of("pages_to_scan", "sleep_millisecs", "run", "max_page_sharing",
            "use_zero_pages", "smart_scan", "advisor_mode", "advisor_max_cpu", "advisor_target_scan_time",
            "advisor_min_pages_to_scan", "advisor_max_pages_to_scan", "scan_threads");

    private volatile int pagesToScan = DEFAULT_PAGES_TO_SCAN;
    private volatile long sleepMillis = DEFAULT_SLEEP_MILLIS;
    private volatile int run = DEFAULT_RUN;
    private volatile int maxPageSharing = DEFAULT_MAX_PAGE_SHARING;
    private volatile boolean useZeroPages = DEFAULT_USE_ZERO_PAGES;
    private volatile boolean smartScan = DEFAULT_SMART_SCAN;
    private volatile AdvisorMode advisorMode = DEFAULT_ADVISOR_MODE;
    private volatile int advisorMaxCpu = DEFAULT_ADVISOR_MAX_CPU;
    private volatile long advisorTargetScanTimeSeconds = DEFAULT_ADVISOR_TARGET_SCAN_TIME_SECONDS;
    private volatile int advisorMinPagesToScan = DEFAULT_ADVISOR_MIN_PAGES_TO_SCAN;
    private volatile int advisorMaxPagesToScan = DEFAULT_ADVISOR_MAX_PAGES_TO_SCAN;
    private volatile int scanThreads = DEFAULT_SCAN_THREADS;

    /** Unbound (no engine yet): nothing is shared. */
    private volatile SharedFrames sharedFrames = change -> {
        change.run();
        return 0;
    };
    /** Runs between {@code max_page_sharing}'s check that nothing is shared and its write: nothing, but a test's. */
    private volatile Runnable beforeMaxPageSharingWrite = () -> { };

    /** KSM's defaults, except {@code run}, which is 1: an engine is made to merge. */
    public ScanKnobs() {
    }

    /**
     * What {@code max_page_sharing} needs of the engine its knobs are bound to: a count of the frames shared
     * that no merge can change before the new value is in place. A frame filed under the old value would keep
     * it: full-list frames unseen by lookups once the value rose, frames past the value once it fell.
     */
    interface SharedFrames {
        /**
         * Counts the frames shared and, if there are none, runs {@code change}, holding every merge off from
         * the count to the end of the change; returns the count.
         */
        long runIfNoneShared(Runnable change);
    }

    /** Binds the knobs to the engine whose shared frames guard {@code max_page_sharing}. */
    void bind(SharedFrames engineFrames) {
        this.sharedFrames = engineFrames;
    }

    /** Runs {@code hook} from now on between {@code max_page_sharing}'s check and its write. For tests. */
    void beforeMaxPageSharingWrite(Runnable hook) {
        this.beforeMaxPageSharingWrite = hook;
    }

    public int pagesToScan() {
        return pagesToScan;
    }

    /** {@code pages_to_scan}: guest pages visited per batch. Refused while the advisor steers it. */
    public synchronized ScanKnobs pagesToScan(int pages) {
        if (advisorMode != AdvisorMode.NONE) {
            throw new DedupException(Kind.KNOB_REFUSED, "pages_to_scan is steered by advisor_mode=" + advisorName()
                    + "; set advisor_mode=none first");
        }
        requireAtLeast("pages_to_scan", pages, 1);
        pagesToScan = pages;
        return this;
    }

    /** Used by the advisor: bounded by its min and max. */
    synchronized void advisePagesToScan(int pages) {
        pagesToScan = Math.clamp(pages, advisorMinPagesToScan, advisorMaxPagesToScan);
    }

    public int scanThreads() {
        return scanThreads;
    }

    /**
     * {@code scan_threads} (not a KSM knob): threads that share each batch of the scanner, 1 to {@value
     * #MAX_SCAN_THREADS}. A batch's pages are split among them and the batch ends when all are done, so
     * a full scan converges to the same counters on any number of threads; the next batch starts with
     * the new count.
     */
    public synchronized ScanKnobs scanThreads(int threads) {
        requireAtLeast("scan_threads", threads, 1);
        if (threads > MAX_SCAN_THREADS) {
            throw new DedupException(Kind.INVALID_ARGUMENT, "scan_threads " + threads + ": at most " + MAX_SCAN_THREADS);
        }
        scanThreads = threads;
        return this;
    }

    public long sleepMillis() {
        return sleepMillis;
    }

    /** {@code sleep_millisecs}: pause between batches, 0 to 4294967295 as in KSM. */
    public synchronized ScanKnobs sleepMillis(long millis) {
        if (millis < 0 || millis > 0xFFFF_FFFFL) {
            throw new DedupException(Kind.INVALID_ARGUMENT, "sleep_millisecs must be 0 to 4294967295, not " + millis);
        }
        sleepMillis = millis;
        return this;
    }

    public int run() {
        return run;
    }

    /** {@code run}: 0 stop, 1 merge, 2 unmerge everything and then stop. */
    public synchronized ScanKnobs run(int value) {
        if (value < RUN_STOP || value > RUN_UNMERGE) {
            throw new DedupException(Kind.INVALID_ARGUMENT, "run must be 0 (stop), 1 (merge) or 2 (unmerge all), not " + value);
        }
        run = value;
        return this;
    }

    /** The scanner's way back to {@code run=0} once an unmerge is done, unless someone changed it meanwhile. */
    synchronized void unmergeDone() {
        if (run == RUN_UNMERGE) {
            run = RUN_STOP;
        }
    }

    public int maxPageSharing() {
        return maxPageSharing;
    }

    /**
     * {@code max_page_sharing}: how many guest pages may map one shared frame before a duplicate frame
     * starts a chain. At least 2; changing it while frames are shared is refused, as in KSM. The check and
     * the write are one step for the engine's merges ({@link SharedFrames}): none files a frame under the old
     * value once the check has found none.
     */
    public synchronized ScanKnobs maxPageSharing(int value) {
        requireAtLeast("max_page_sharing", value, 2);
        if (value == maxPageSharing) {
            return this;
        }
        int old = maxPageSharing;
        long shared = sharedFrames.runIfNoneShared(() -> {
            beforeMaxPageSharingWrite.run();
            maxPageSharing = value;
        });
        if (shared > 0) {
            throw new DedupException(Kind.KNOB_REFUSED, "max_page_sharing cannot change from " + old + " to " + value
                    + " while frames are shared (pages_shared " + shared + "); unmerge first (run=2), then set it");
        }
        return this;
    }

    public boolean useZeroPages() {
        return useZeroPages;
    }

    /** {@code use_zero_pages}: map all-zero pages to the zero frame instead of merging them with each other. */
    public synchronized ScanKnobs useZeroPages(boolean value) {
        useZeroPages = value;
        return this;
    }

    public boolean smartScan() {
        return smartScan;
    }

    /** {@code smart_scan}: skip pages that stayed unmergeable over several scans, longer the longer they stay so. */
    public synchronized ScanKnobs smartScan(boolean value) {
        smartScan = value;
        return this;
    }

    public AdvisorMode advisorMode() {
        return advisorMode;
    }

    /** {@code advisor_mode}: {@code none} or {@code scan-time}. */
    public synchronized ScanKnobs advisorMode(AdvisorMode mode) {
        if (mode == null) {
            throw new DedupException(Kind.INVALID_ARGUMENT, "advisor_mode must be none or scan-time");
        }
        advisorMode = mode;
        if (mode == AdvisorMode.SCAN_TIME) {
            pagesToScan = Math.clamp(pagesToScan, advisorMinPagesToScan, advisorMaxPagesToScan);
        }
        return this;
    }

    public int advisorMaxCpu() {
        return advisorMaxCpu;
    }

    /** {@code advisor_max_cpu}: the scanner's CPU cap in percent of one core, 1 to 100. */
    public synchronized ScanKnobs advisorMaxCpu(int percent) {
        if (percent < 1 || percent > 100) {
            throw new DedupException(Kind.INVALID_ARGUMENT, "advisor_max_cpu must be 1 to 100 (percent of one core), not " + percent);
        }
        advisorMaxCpu = percent;
        return this;
    }

    public long advisorTargetScanTimeSeconds() {
        return advisorTargetScanTimeSeconds;
    }

    /** {@code advisor_target_scan_time}: the full-scan time the advisor aims at, at least 2 seconds. */
    public synchronized ScanKnobs advisorTargetScanTimeSeconds(long seconds) {
        if (seconds < 2) {
            throw new DedupException(Kind.INVALID_ARGUMENT, "advisor_target_scan_time must be at least 2 seconds, not " + seconds);
        }
        advisorTargetScanTimeSeconds = seconds;
        return this;
    }

    public int advisorMinPagesToScan() {
        return advisorMinPagesToScan;
    }

    public int advisorMaxPagesToScan() {
        return advisorMaxPagesToScan;
    }

    /** {@code advisor_min_pages_to_scan} and {@code advisor_max_pages_to_scan}: the advisor's bounds. */
    public synchronized ScanKnobs advisorPagesToScanRange(int min, int max) {
        requireAtLeast("advisor_min_pages_to_scan", min, 1);
        if (max < min) {
            throw new DedupException(Kind.INVALID_ARGUMENT, "advisor_max_pages_to_scan (" + max + ") must not be below advisor_min_pages_to_scan ("
                    + min + ")");
        }
        advisorMinPagesToScan = min;
        advisorMaxPagesToScan = max;
        return this;
    }

    /**
     * Sets the knob {@code name} (its sysfs name, one of {@link #NAMES}) from {@code value} as written to
     * its file under {@code /sys/kernel/mm/ksm}: decimal numbers, {@code 0}/{@code 1} for flags,
     * {@code none}/{@code scan-time} for {@code advisor_mode}. The daemon's config and the CLI use it.
     * A refusal's message names the knob, and the value where the value is at fault
     * ({@code pages_to_scan must be a whole number, not 'abc'}), so a caller need add neither.
     *
     * @throws DedupException {@link DedupException.Kind#INVALID_ARGUMENT} for an unknown name or a
     *         malformed or out-of-range value, {@link DedupException.Kind#KNOB_REFUSED} where the knob
     *         refuses the change now; either way the knob keeps its value
     */
    public synchronized ScanKnobs set(String name, String value) {
        if (name == null || value == null) {
            throw new DedupException(Kind.INVALID_ARGUMENT, "a knob needs a name and a value, not " + name + "=" + value);
        }
        switch (name) {
            case "pages_to_scan" -> pagesToScan(intValue(name, value));
            case "sleep_millisecs" -> sleepMillis(longValue(name, value));
            case "run" -> run(intValue(name, value));
            case "max_page_sharing" -> maxPageSharing(intValue(name, value));
            case "use_zero_pages" -> useZeroPages(flag(name, value));
            case "smart_scan" -> smartScan(flag(name, value));
            case "advisor_mode" -> advisorMode(advisorModeNamed(value));
            case "advisor_max_cpu" -> advisorMaxCpu(intValue(name, value));
            case "advisor_target_scan_time" -> advisorTargetScanTimeSeconds(longValue(name, value));
            case "advisor_min_pages_to_scan" -> advisorPagesToScanRange(intValue(name, value), advisorMaxPagesToScan);
            case "advisor_max_pages_to_scan" -> advisorPagesToScanRange(advisorMinPagesToScan, intValue(name, value));
            case "scan_threads" -> scanThreads(intValue(name, value));
            default -> throw new DedupException(Kind.INVALID_ARGUMENT, "'" + name + "' is not a knob; the knobs are "
                    + String.join(", ", NAMES));
        }
        return this;
    }

    /**
     * The knob called {@code name} as {@link #set} takes it and {@code /sys/kernel/mm/ksm} shows it: a
     * number, or {@code none}/{@code scan-time} for {@code advisor_mode}.
     *
     * @throws DedupException {@link DedupException.Kind#INVALID_ARGUMENT} for an unknown name
     */
    public String get(String name) {
        return switch (name) {
            case "pages_to_scan" -> Integer.toString(pagesToScan);
            case "sleep_millisecs" -> Long.toString(sleepMillis);
            case "run" -> Integer.toString(run);
            case "max_page_sharing" -> Integer.toString(maxPageSharing);
            case "use_zero_pages" -> useZeroPages ? "1" : "0";
            case "smart_scan" -> smartScan ? "1" : "0";
            case "advisor_mode" -> advisorName();
            case "advisor_max_cpu" -> Integer.toString(advisorMaxCpu);
            case "advisor_target_scan_time" -> Long.toString(advisorTargetScanTimeSeconds);
            case "advisor_min_pages_to_scan" -> Integer.toString(advisorMinPagesToScan);
            case "advisor_max_pages_to_scan" -> Integer.toString(advisorMaxPagesToScan);
            case "scan_threads" -> Integer.toString(scanThreads);
            default -> throw new DedupException(Kind.INVALID_ARGUMENT, "'" + name + "' is not a knob; the knobs are "
                    + String.join(", ", NAMES));
        };
    }

    private static AdvisorMode advisorModeNamed(String value) {
        return switch (value) {
            case "none" -> AdvisorMode.NONE;
            case "scan-time" -> AdvisorMode.SCAN_TIME;
            default -> throw new DedupException(Kind.INVALID_ARGUMENT, "advisor_mode must be none or scan-time, not '"
                    + value + "'");
        };
    }

    private static boolean flag(String knob, String value) {
        return switch (value) {
            case "0" -> false;
            case "1" -> true;
            default -> throw new DedupException(Kind.INVALID_ARGUMENT, knob + " must be 0 or 1, not '" + value + "'");
        };
    }

    private static long longValue(String knob, String value) {
        try {
            return Long.parseLong(value);
        } catch (NumberFormatException e) {
            throw new DedupException(Kind.INVALID_ARGUMENT, knob + (value.matches("[-+]?[0-9]+")
                    ? " must be between " + Long.MIN_VALUE + " and " + Long.MAX_VALUE + ", not " + value
                    : " must be a whole number, not '" + value + "'"));
        }
    }

    private static int intValue(String knob, String value) {
        long v = longValue(knob, value);
        if (v < Integer.MIN_VALUE || v > Integer.MAX_VALUE) {
            throw new DedupException(Kind.INVALID_ARGUMENT, knob + (v > 0 ? " must be at most " + Integer.MAX_VALUE
                    + ", not " + v : " must be at least " + Integer.MIN_VALUE + ", not " + v));
        }
        return (int) v;
    }

    private String advisorName() {
        return advisorMode == AdvisorMode.SCAN_TIME ? "scan-time" : "none";
    }

    private static void requireAtLeast(String knob, long value, long min) {
        if (value < min) {
            throw new DedupException(Kind.INVALID_ARGUMENT, knob + " must be at least " + min + ", not " + value);
        }
    }
}
