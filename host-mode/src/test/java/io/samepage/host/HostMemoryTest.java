package io.samepage.host;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@link HostMemory} from a fake {@code /proc/meminfo}: ksmtuned's free memory, and sizes that do not fit. */
class HostMemoryTest {

    @TempDir
    Path proc;

    private HostMemory read(String meminfo) throws IOException {
        Files.writeString(proc.resolve("meminfo"), meminfo);
        return HostMemory.read(proc);
    }

    @Test
    void freeMemoryIsMemFreePlusBuffersPlusCached() throws IOException {
        HostMemory memory = read("MemTotal:       16384000 kB\nMemFree:         1000 kB\nMemAvailable:   9999 kB\n"
                + "Buffers:           20 kB\nCached:           300 kB\n");
        assertEquals(16384000L * 1024, memory.totalBytes());
        assertEquals(1320L * 1024, memory.freeBytes());
    }

    /**
     * A size in kB whose bytes overflow a long was multiplied unchecked: MemTotal of 2^53 + 1 kB came out
     * negative and was reported as "has no MemTotal line"; a huge MemFree made the free memory negative.
     */
    @Test
    void sizesThatDoNotFitAreNamedOrLeftOutNeverNegative() throws IOException {
        String huge = "9007199254740993";
        KernelKsmException e = assertThrows(KernelKsmException.class, () -> read("MemTotal: " + huge + " kB\n"));
        assertEquals(proc.resolve("meminfo") + ": MemTotal is not a size in kB (a positive number that fits in 64 "
                + "bits as bytes)", e.getMessage());
        HostMemory memory = read("MemTotal: 1000 kB\nMemFree: " + huge + " kB\nBuffers: 1 kB\nCached: -5 kB\n");
        assertEquals(1024, memory.freeBytes(), "the sizes that fit, the others left out");
        memory = read("MemTotal: 1000 kB\nMemFree: 9007199254740991 kB\nBuffers: 9007199254740991 kB\n");
        assertEquals(Long.MAX_VALUE, memory.freeBytes(), "a sum past a long is as much as a long holds");
        assertEquals(proc.resolve("meminfo") + " has no MemTotal line",
                assertThrows(KernelKsmException.class, () -> read("MemFree: 1 kB\n")).getMessage());
    }
}
