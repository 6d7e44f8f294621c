package io.samepage.core;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * What the kernel holds resident for one mapping of this process: the {@code Rss} of its entries in
 * {@code /proc/self/smaps}. The process's {@code RssAnon} also moves with whatever the JVM maps, touches
 * or gives back on its own threads meanwhile (its heap, compiled code, a compiler's arenas, a thread's
 * stack), and so cannot show what a test's own frames did.
 */
final class MappingResidency {

    private MappingResidency() {
    }

    /**
     * The {@code Rss}, in KiB, of every smaps entry that overlaps {@code region}. An entry the kernel merged
     * with a neighbour of the same flags counts whole: its other pages do not change under the test.
     *
     * @throws IOException if no entry overlaps the region
     */
    static long residentKib(MemorySegment region) throws IOException {
        long start = region.address();
        long end = start + region.byteSize();
        boolean inside = false;
        boolean found = false;
        long kib = 0;
        for (String line : Files.readAllLines(Path.of("/proc/self/smaps"))) {
            if (line.matches("^[0-9a-f]+-[0-9a-f]+ .*")) {
                String[] range = line.substring(0, line.indexOf(' ')).split("-");
                inside = Long.parseUnsignedLong(range[0], 16) < end && start < Long.parseUnsignedLong(range[1], 16);
            } else if (inside && line.startsWith("Rss:")) {
                kib += Long.parseLong(line.replaceAll("\\D", ""));
                found = true;
            }
        }
        if (!found) {
            throw new IOException("the mapping at 0x" + Long.toHexString(start) + " is not in /proc/self/smaps");
        }
        return kib;
    }
}
