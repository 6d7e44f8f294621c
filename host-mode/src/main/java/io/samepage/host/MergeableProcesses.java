package io.samepage.host;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;

/**
 * The processes whose memory kernel KSM may merge, and their mergeable regions.
 *
 * <p>How a process is found: its {@code /proc/PID/ksm_stat} says {@code ksm_mergeable: yes} (a region
 * was madvised MADV_MERGEABLE) or {@code ksm_merge_any: yes} (prctl PR_SET_MEMORY_MERGE), or shows
 * {@code ksm_rmap_items > 0} (ksmd has visited its pages). That costs one small read per process. Only
 * on kernels whose {@code ksm_stat} lacks the {@code ksm_mergeable} line is {@code /proc/PID/smaps}
 * read for every process, looking for {@code mg} in a region's {@code VmFlags}: smaps makes the
 * kernel walk the process's page tables, which for a host full of large guests takes seconds.
 *
 * <p>For the processes found, smaps gives the regions: those whose {@code VmFlags} hold {@code mg}
 * (VM_MERGEABLE; with {@code ksm_merge_any} the kernel flags every eligible region), parsed from their
 * header line (the {@code /proc/PID/maps} line) by {@link MemoryMaps}, and their {@code Rss}. Processes
 * that exit meanwhile, or that this user may not read, are counted and skipped.
 */
public final class MergeableProcesses {

    /**
     * A process with mergeable regions.
     *
     * @param residentBytes the regions' {@code Rss}
     * @param ksmZeroPages its {@code ksm_zero_pages} ({@code ksm_stat}): pages KSM already mapped to the
     *     zero page, which no longer show as resident
     */
    public record Process(int pid, String command, List<MemoryRegion> regions, long residentBytes,
                          long ksmZeroPages) {
    }

    /** What a search found: the processes, how many were looked at, and how many could not be read. */
    public record Found(List<Process> processes, int processesSeen, int unreadable, boolean readAllSmaps) {
        /** The {@code Rss} of every mergeable region found, in bytes. */
        public long residentBytes() {
            long sum = 0;
            for (Process p : processes) {
                sum += p.residentBytes();
            }
            return sum;
        }
    }

    private MergeableProcesses() {
    }

    /** Looks at every process under {@code ksm}'s proc directory. */
    public static Found find(KernelKsm ksm) {
        Path proc = ksm.procDirectory();
        List<Long> pids = new ArrayList<>();
        try (Stream<Path> entries = Files.list(proc)) {
            entries.map(p -> p.getFileName().toString()).filter(n -> n.chars().allMatch(Character::isDigit))
                    .forEach(n -> pids.add(Long.parseLong(n)));
        } catch (IOException e) {
            throw new KernelKsmException(KernelKsmException.Kind.IO, "cannot list " + proc + ": "
                    + KernelKsm.reason(e), List.of(), e);
        }
        pids.sort(null);
        List<Process> found = new ArrayList<>();
        int unreadable = 0;
        boolean readAllSmaps = false;
        for (long pid : pids) {
            if (pid > Integer.MAX_VALUE) {
                continue;
            }
            KsmStat stat = ksm.ksmStat(pid);
            boolean candidate;
            if (!stat.present() && !Files.isDirectory(proc.resolve(Long.toString(pid)))) {
                continue;
            } else if (stat.present() && (stat.tellsMergeable() || stat.mergeable())) {
                candidate = stat.mergeable();
            } else if (stat.present() && stat.values().isEmpty()) {
                candidate = false;
            } else {
                candidate = true;
                readAllSmaps = true;
            }
            if (!candidate) {
                continue;
            }
            try {
                Process process = read(proc, (int) pid, stat.zeroPages().orElse(0));
                if (!process.regions().isEmpty()) {
                    found.add(process);
                }
            } catch (IOException | ProcessScanException e) {
                unreadable++;
            }
        }
        return new Found(List.copyOf(found), pids.size(), unreadable, readAllSmaps);
    }

    /**
     * One process's mergeable regions from its smaps, and its command name.
     *
     * @throws ProcessScanException if a header line does not parse as a maps line
     */
    static Process read(Path proc, int pid, long ksmZeroPages) throws IOException {
        Path directory = proc.resolve(Integer.toString(pid));
        List<MemoryRegion> regions = new ArrayList<>();
        long resident = 0;
        String header = null;
        long rss = 0;
        // A file or command name is bytes, not UTF-8: decoded with replacement, never refused.
        try (java.io.BufferedReader lines = new java.io.BufferedReader(new java.io.InputStreamReader(
                Files.newInputStream(directory.resolve("smaps")), java.nio.charset.StandardCharsets.UTF_8))) {
            for (String line = lines.readLine(); line != null; line = lines.readLine()) {
                int dash = line.indexOf('-');
                int space = line.indexOf(' ');
                if (dash > 0 && space > dash && isHex(line, 0, dash) && isHex(line, dash + 1, space)) {
                    header = line;
                    rss = 0;
                } else if (line.startsWith("Rss:")) {
                    rss = kib(line);
                } else if (header != null && line.startsWith("VmFlags:") && hasFlag(line, "mg")) {
                    regions.addAll(MemoryMaps.parse(pid, header));
                    resident = rss > Long.MAX_VALUE - resident ? Long.MAX_VALUE : resident + rss;
                }
            }
        }
        String command;
        try {
            command = new String(Files.readAllBytes(directory.resolve("comm")), java.nio.charset.StandardCharsets.UTF_8)
                    .strip();
        } catch (IOException e) {
            command = "?";
        }
        return new Process(pid, command, List.copyOf(regions), resident, ksmZeroPages);
    }

    private static boolean isHex(String line, int from, int to) {
        for (int i = from; i < to; i++) {
            if (Character.digit(line.charAt(i), 16) < 0) {
                return false;
            }
        }
        return to > from;
    }

    private static boolean hasFlag(String vmFlags, String flag) {
        for (String token : vmFlags.substring("VmFlags:".length()).trim().split("\\s+")) {
            if (token.equals(flag)) {
                return true;
            }
        }
        return false;
    }

    /** The line's kB figure in bytes; 0 where it is missing, not a number, negative or too large. */
    private static long kib(String line) {
        String[] fields = line.trim().split("\\s+");
        try {
            long kib = Long.parseLong(fields[1]);
            return kib < 0 || kib > Long.MAX_VALUE / 1024 ? 0 : kib * 1024;
        } catch (NumberFormatException | ArrayIndexOutOfBoundsException e) {
            return 0;
        }
    }
}
