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
                    String name = entry.getFileName().toString();
                    if (name.chars().allMatch(Character::isDigit) && name.length() < 19
                            && Files.readString(entry.resolve("comm")).strip().equals("ksmd")) {
                        return new Ksmd(Long.parseLong(name), entry.resolve("stat"),
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

    /**
     * ksmd's CPU time so far (user + system), in nanoseconds.
     *
     * @throws IOException if the file cannot be read, or holds no such fields (a line that is not
     *                     {@code /proc/PID/stat}'s): the callers handle an unreadable ksmd as one
     */
    public long cpuNanos() throws IOException {
        String line = Files.readString(stat, java.nio.charset.StandardCharsets.ISO_8859_1);   // any byte, one char
        // Fields after the command name, which is in parentheses and may hold spaces: field 3 onwards.
        int close = line.lastIndexOf(')');
        String[] fields = close < 0 || close + 2 > line.length() ? new String[0]
                : line.substring(close + 2).split(" ");
        try {
            if (fields.length <= 15 - 3) {
                throw new NumberFormatException();
            }
            long ticks = Math.addExact(Long.parseLong(fields[14 - 3]), Long.parseLong(fields[15 - 3]));
            if (ticks < 0) {
                throw new NumberFormatException();
            }
            return Math.multiplyExact(ticks, 1_000_000_000L) / ticksPerSecond;
        } catch (NumberFormatException | ArithmeticException e) {
            // Not the parser's message: it would quote the file's bytes.
            throw new IOException(stat + ": no utime and stime in fields 14 and 15, or not counts of ticks");
        }
    }
}
