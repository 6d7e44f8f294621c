package io.samepage.host;

import io.samepage.linux.ClockTicks;
import java.io.IOException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * The kernel thread {@code ksmd}: found by its {@code /proc/PID/comm}, its CPU time read from
 * {@code /proc/PID/stat} fields 14 ({@code utime}) and 15 ({@code stime}), in clock ticks
 * ({@link ClockTicks}, 10 ms where {@code USER_HZ} is 100). Kernel KSM's cost, as the density suite
 * measures it and {@link KsmPolicyLoop} budgets it. Immutable.
 */
public record Ksmd(long pid, Path stat, long ticksPerSecond) {

    /** ksmd of this host, or null if no process is named {@code ksmd} (no KSM, or /proc hides it). */
    public static Ksmd find(Path proc) {
        try (DirectoryStream<Path> entries = Files.newDirectoryStream(proc, "[0-9]*")) {
            for (Path entry : entries) {
                try {
                    if (Files.readString(entry.resolve("comm")).strip().equals("ksmd")) {
                        return new Ksmd(Long.parseLong(entry.getFileName().toString()), entry.resolve("stat"),
                                ClockTicks.perSecond());
                    }
                } catch (IOException gone) {
                    // The process exited while the directory was listed: not ksmd, which never exits.
                }
            }
        } catch (IOException e) {
            return null;
        }
        return null;
    }

    /** ksmd's CPU time so far (user + system), in nanoseconds. */
    public long cpuNanos() throws IOException {
        String line = Files.readString(stat);
        // Fields after the command name, which is in parentheses and may hold spaces: field 3 onwards.
        String[] fields = line.substring(line.lastIndexOf(')') + 2).split(" ");
        long ticks = Long.parseLong(fields[14 - 3]) + Long.parseLong(fields[15 - 3]);
        return ticks * 1_000_000_000L / ticksPerSecond;
    }
}
