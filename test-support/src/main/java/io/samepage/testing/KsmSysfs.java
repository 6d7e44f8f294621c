package io.samepage.testing;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * A {@code /sys/kernel/mm/ksm} in a directory of the test's: the files of this project's kernel (Linux
 * 6.18) with the values a booted kernel shows, so tests of kernel KSM control never need root or the
 * real sysfs.
 */
public final class KsmSysfs {

    /** The files of Linux 6.18's KSM directory and their values right after boot, in {@code ls} order. */
    public static final Map<String, String> BOOT;

    static {
        String[] files = {
            "advisor_max_cpu", "70", "advisor_max_pages_to_scan", "30000", "advisor_min_pages_to_scan", "500",
            "advisor_mode", "[none] scan-time", "advisor_target_scan_time", "200", "full_scans", "0",
            "general_profit", "0", "ksm_zero_pages", "0", "max_page_sharing", "256", "merge_across_nodes", "1",
            "pages_scanned", "0", "pages_shared", "0", "pages_sharing", "0", "pages_skipped", "0",
            "pages_to_scan", "100", "pages_unshared", "0", "pages_volatile", "0", "run", "0",
            "sleep_millisecs", "20", "smart_scan", "1", "stable_node_chains", "0",
            "stable_node_chains_prune_millisecs", "2000", "stable_node_dups", "0", "use_zero_pages", "0",
        };
        Map<String, String> boot = new LinkedHashMap<>();
        for (int i = 0; i < files.length; i += 2) {
            boot.put(files[i], files[i + 1]);
        }
        BOOT = Collections.unmodifiableMap(boot);
    }

    private KsmSysfs() {
    }

    /**
     * Creates {@code directory} holding every file of {@link #BOOT}, each value on a line of its own as
     * sysfs prints it, with {@code overrides} ({@code name, value, name, value, ...}) in place of the
     * boot values.
     *
     * @throws IllegalArgumentException if an override names a file the kernel does not have
     */
    public static Path write(Path directory, String... overrides) throws IOException {
        if (overrides.length % 2 != 0) {
            throw new IllegalArgumentException("overrides come in name, value pairs");
        }
        Map<String, String> files = new LinkedHashMap<>(BOOT);
        for (int i = 0; i < overrides.length; i += 2) {
            if (files.replace(overrides[i], overrides[i + 1]) == null) {
                throw new IllegalArgumentException("no KSM file named " + overrides[i]);
            }
        }
        Files.createDirectories(directory);
        for (Map.Entry<String, String> file : files.entrySet()) {
            Files.writeString(directory.resolve(file.getKey()), file.getValue() + "\n");
        }
        return directory;
    }
}
