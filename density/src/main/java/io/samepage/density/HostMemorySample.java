package io.samepage.density;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;

/**
 * The host's memory as the kernel counts it at one instant, for the coarse half of the suite's
 * cross-check ({@link KernelView}): the machine's {@code MemAvailable} ({@code /proc/meminfo}) and the
 * memory charged to this process's cgroup: {@code memory.current} under cgroup v2, or, where the memory
 * controller is mounted as cgroup v1 (this project's machine kind), {@code memory.usage_in_bytes}. Both
 * count every process they cover; the cgroup is this process's alone only where {@code cgroup.procs}
 * lists nothing else, which {@link #cgroupAlone()} says.
 *
 * @param memAvailableBytes {@code MemAvailable}, or -1 if it cannot be read
 * @param cgroupBytes       the cgroup's charge, or -1 if there is none to read
 * @param cgroupFile        the file {@code cgroupBytes} came from, or null
 * @param cgroupAlone       true if the cgroup held this process and no other when read
 */
record HostMemorySample(long memAvailableBytes, long cgroupBytes, Path cgroupFile, boolean cgroupAlone) {

    private static final Path MEMINFO = Path.of("/proc/meminfo");
    private static final Path SELF_CGROUP = Path.of("/proc/self/cgroup");
    private static final Path MOUNTINFO = Path.of("/proc/self/mountinfo");

    /** Reads both now. Never throws: what cannot be read is -1. */
    static HostMemorySample take() {
        Path file = locateCgroupFile();
        long cgroup = file == null ? -1 : number(file);
        return new HostMemorySample(memAvailable(), cgroup, cgroup < 0 ? null : file,
                cgroup >= 0 && alone(file.resolveSibling("cgroup.procs")));
    }

    private static long memAvailable() {
        try {
            for (String line : Files.readAllLines(MEMINFO)) {
                if (line.startsWith("MemAvailable:")) {
                    return Long.parseLong(line.replaceAll("\\D", "")) << 10;
                }
            }
        } catch (IOException | RuntimeException e) {
            // not Linux, or no /proc: not measured
        }
        return -1;
    }

    private static Path locateCgroupFile() {
        try {
            for (Path candidate : cgroupFiles(Files.readString(SELF_CGROUP), Files.readString(MOUNTINFO))) {
                if (Files.isReadable(candidate)) {
                    return candidate;
                }
            }
        } catch (IOException | RuntimeException e) {
            // no cgroups here
        }
        return null;
    }

    /**
     * Where this process's cgroup memory charge may be read, best first, from the texts of {@code
     * /proc/self/cgroup} and {@code /proc/self/mountinfo}: {@code memory.current} of its cgroup v2 group,
     * then {@code memory.usage_in_bytes} of its group in a cgroup v1 hierarchy that has the memory
     * controller. A root group has neither file; the caller takes the first that exists.
     */
    static List<Path> cgroupFiles(String cgroup, String mountinfo) {
        String v2 = null;
        String v1 = null;
        for (String line : cgroup.split("\n")) {
            String[] f = line.split(":", 3);
            if (f.length == 3 && f[0].equals("0") && f[1].isEmpty()) {
                v2 = f[2];
            } else if (f.length == 3 && Arrays.asList(f[1].split(",")).contains("memory")) {
                v1 = f[2];
            }
        }
        Path v2File = null;
        Path v1File = null;
        for (String line : mountinfo.split("\n")) {
            int separator = line.indexOf(" - ");
            if (separator < 0) {
                continue;
            }
            String[] mount = line.substring(0, separator).split(" ");
            String[] fs = line.substring(separator + 3).split(" ");
            if (mount.length < 5 || fs.length < 3) {
                continue;
            }
            if (v2 != null && v2File == null && fs[0].equals("cgroup2")) {
                v2File = inMount(mount[4], mount[3], v2, "memory.current");
            } else if (v1 != null && v1File == null && fs[0].equals("cgroup")
                    && Arrays.asList(fs[2].split(",")).contains("memory")) {
                v1File = inMount(mount[4], mount[3], v1, "memory.usage_in_bytes");
            }
        }
        return Arrays.stream(new Path[] {v2File, v1File}).filter(p -> p != null).toList();
    }

    /** {@code file} of group {@code group}, in a hierarchy whose {@code root} is mounted at {@code mountPoint}. */
    private static Path inMount(String mountPoint, String root, String group, String file) {
        String relative = !root.equals("/") && group.startsWith(root) ? group.substring(root.length()) : group;
        return Path.of(mountPoint.replace("\\040", " "), relative.replaceFirst("^/+", ""), file);
    }

    private static long number(Path file) {
        try {
            return Long.parseLong(Files.readString(file).strip());
        } catch (IOException | RuntimeException e) {
            return -1;
        }
    }

    private static boolean alone(Path procs) {
        try {
            List<String> pids = Files.readAllLines(procs).stream().map(String::strip)
                    .filter(s -> !s.isEmpty()).toList();
            return pids.equals(List.of(Long.toString(ProcessHandle.current().pid())));
        } catch (IOException | RuntimeException e) {
            return false;
        }
    }
}
