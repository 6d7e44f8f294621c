package io.samepage.e2e;

import io.samepage.testing.HostKsmLock;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermission;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.TreeMap;
import java.util.stream.Stream;

/**
 * The host's kernel KSM ({@code /sys/kernel/mm/ksm}) as the end-to-end tests touch it: one per host, so
 * every test that writes it holds the host-wide lock {@link #LOCK} ({@link HostKsmLock}: two builds at
 * once would read each other's merges and restore each other's knobs), remembers the knobs first and
 * restores them last.
 */
final class HostKsm {

    static final Path DIRECTORY = Path.of("/sys/kernel/mm/ksm");
    static final Path LOCK = HostKsmLock.PATH;

    /** Work done while holding {@link #LOCK}. */
    @FunctionalInterface
    interface Locked {
        void run() throws Exception;
    }

    private HostKsm() {
    }

    /** Runs {@code work} holding the host-wide KSM lock, waiting for it if another test holds it. */
    static void withLock(Locked work) throws Exception {
        HostKsmLock.run(work::run);
    }

    /** A knob or counter as the kernel shows it; a choice ({@code [none] scan-time}) as the one chosen. */
    static String knob(String name) throws IOException {
        String value = Files.readString(DIRECTORY.resolve(name)).trim();
        int open = value.indexOf('[');
        return open >= 0 ? value.substring(open + 1, value.indexOf(']', open)) : value;
    }

    static long counter(String name) throws IOException {
        return Long.parseLong(knob(name));
    }

    static void write(String name, String value) throws IOException {
        Files.writeString(DIRECTORY.resolve(name), value);
    }

    /** Every knob (every file of the directory its owner may write) and its value, by name. */
    static Map<String, String> knobs() throws IOException {
        Map<String, String> knobs = new TreeMap<>();
        try (Stream<Path> files = Files.list(DIRECTORY)) {
            for (Path file : files.toList()) {
                if (Files.getPosixFilePermissions(file).contains(PosixFilePermission.OWNER_WRITE)) {
                    knobs.put(file.getFileName().toString(), knob(file.getFileName().toString()));
                }
            }
        }
        return knobs;
    }

    /**
     * {@code run=2} unmerges everything, then every knob of {@code saved} that differs goes back,
     * {@code run} last; the first failure is thrown after the rest were tried.
     */
    static void restore(Map<String, String> saved) throws IOException {
        IOException failure = null;
        try {
            write("run", "2");
        } catch (IOException e) {
            failure = e;
        }
        for (Map.Entry<String, String> knob : saved.entrySet()) {
            try {
                if (!knob.getKey().equals("run") && !knob(knob.getKey()).equals(knob.getValue())) {
                    write(knob.getKey(), knob.getValue());
                }
            } catch (IOException e) {
                failure = failure == null ? e : failure;
            }
        }
        write("run", saved.get("run"));
        if (failure != null) {
            throw failure;
        }
    }

    /** ksmd's {@code /proc/PID/stat}, or null if there is no ksmd (its CPU time then reads as 0). */
    static Path ksmdStat() throws IOException {
        try (var dirs = Files.list(Path.of("/proc"))) {
            for (Path dir : dirs.filter(d -> d.getFileName().toString().matches("\\d+")).toList()) {
                try {
                    if (Files.readString(dir.resolve("comm")).trim().equals("ksmd")) {
                        return dir.resolve("stat");
                    }
                } catch (IOException gone) {
                    // the process exited while the list was read
                }
            }
        }
        return null;
    }

    /** CPU time so far (utime + stime, fields 14 and 15 of {@code stat}), in clock ticks. */
    static long ticks(Path stat) throws IOException {
        if (stat == null) {
            return 0;
        }
        String text = Files.readString(stat);
        String[] fields = text.substring(text.lastIndexOf(')') + 2).split(" ");
        return Long.parseLong(fields[11]) + Long.parseLong(fields[12]);
    }

    static long clockTicks() throws IOException, InterruptedException {
        Process getconf = new ProcessBuilder("getconf", "CLK_TCK").start();
        String ticks = new String(getconf.getInputStream().readAllBytes(), StandardCharsets.US_ASCII).trim();
        getconf.waitFor();
        return ticks.matches("\\d+") ? Long.parseLong(ticks) : 100;
    }

    /** {@code /proc/PID/ksm_stat}'s numbers, by name. */
    static Map<String, Long> ksmStat(long pid) throws IOException {
        Map<String, Long> stat = new LinkedHashMap<>();
        for (String line : Files.readAllLines(Path.of("/proc", Long.toString(pid), "ksm_stat"))) {
            String[] parts = line.trim().split("\\s+");
            if (parts.length == 2 && parts[1].matches("-?\\d+")) {
                stat.put(parts[0], Long.parseLong(parts[1]));
            }
        }
        return stat;
    }
}
