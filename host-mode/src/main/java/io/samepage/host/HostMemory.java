package io.samepage.host;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/**
 * The host's memory as ksmtuned sees it, from {@code /proc/meminfo}: {@code MemTotal}, and as free
 * memory {@code MemFree + Buffers + Cached} (ksmtuned's definition, kept so its thresholds mean what
 * they meant there). In bytes.
 */
public record HostMemory(long totalBytes, long freeBytes) {

    /** Reads {@code meminfo} under {@code procDirectory}. */
    public static HostMemory read(Path procDirectory) {
        Path file = procDirectory.resolve("meminfo");
        List<String> lines;
        try {
            lines = Files.readAllLines(file);
        } catch (IOException e) {
            throw new KernelKsmException(KernelKsmException.Kind.IO, "cannot read " + file + ": "
                    + KernelKsm.reason(e), List.of(), e);
        }
        long total = -1;
        boolean totalSeen = false;
        long free = 0;
        for (String line : lines) {
            String[] fields = line.split("\\s+");
            if (fields.length < 2) {
                continue;
            }
            switch (fields[0]) {
                case "MemTotal:" -> {
                    totalSeen = true;
                    total = bytesOfKib(fields[1]);
                }
                case "MemFree:", "Buffers:", "Cached:" -> {
                    long bytes = bytesOfKib(fields[1]);
                    free = bytes < 0 ? free : bytes > Long.MAX_VALUE - free ? Long.MAX_VALUE : free + bytes;
                }
                default -> { }
            }
        }
        if (!totalSeen) {
            throw new KernelKsmException(KernelKsmException.Kind.IO, file + " has no MemTotal line");
        }
        if (total <= 0) {
            throw new KernelKsmException(KernelKsmException.Kind.IO, file + ": MemTotal is not a size in kB "
                    + "(a positive number that fits in 64 bits as bytes)");
        }
        return new HostMemory(total, free);
    }

    /** kB as bytes; -1 for what is not a count of kB, or a count too large for bytes in a long. */
    private static long bytesOfKib(String number) {
        try {
            long kib = Long.parseLong(number);
            return kib < 0 ? -1 : Math.multiplyExact(kib, 1024L);
        } catch (NumberFormatException | ArithmeticException e) {
            return -1;
        }
    }
}
