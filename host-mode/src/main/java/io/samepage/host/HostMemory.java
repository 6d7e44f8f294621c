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
        long free = 0;
        for (String line : lines) {
            String[] fields = line.split("\\s+");
            if (fields.length < 2) {
                continue;
            }
            switch (fields[0]) {
                case "MemTotal:" -> total = kib(fields[1]);
                case "MemFree:", "Buffers:", "Cached:" -> free += kib(fields[1]);
                default -> { }
            }
        }
        if (total <= 0) {
            throw new KernelKsmException(KernelKsmException.Kind.IO, file + " has no MemTotal line");
        }
        return new HostMemory(total, free);
    }

    private static long kib(String number) {
        try {
            return Long.parseLong(number) * 1024;
        } catch (NumberFormatException e) {
            return 0;
        }
    }
}
