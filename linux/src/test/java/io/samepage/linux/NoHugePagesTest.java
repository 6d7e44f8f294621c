package io.samepage.linux;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.List;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * A reserved region is on 4 KiB pages only, so that a discarded frame's memory goes back to the kernel
 * at once. Where {@code transparent_hugepage/enabled} is {@code always}, a region without
 * {@code MADV_NOHUGEPAGE} faults in 2 MiB huge pages, and discarding a frame of one only splits its
 * mapping: the kernel queues the huge page to be split when memory runs short and keeps all of it
 * until then, while {@code RssAnon} drops.
 */
class NoHugePagesTest {

    private static final long PAGE = 4096;
    private static final long BYTES = 8L << 20;
    private static final Path THP_ENABLED = Path.of("/sys/kernel/mm/transparent_hugepage/enabled");
    /**
     * Held while a test reads, sets and restores {@link #THP_ENABLED}, a setting of the whole host that
     * density's KernelViewTest sets too, maybe in another build at once: else one's restore undoes the
     * other's {@code always} mid-test, and the other then restores the first's {@code always} for good.
     * KernelViewTest locks the same file; this module's tests cannot use test-support, which depends on it.
     */
    private static final Path THP_LOCK = Path.of("/tmp/samepage-thp-enabled.lock");

    @BeforeEach
    void nativeMemory() {
        assumeTrue(NativeMemory.available(), "skipped: native memory is not available here");
    }

    /** The kernel marks the mapping {@code nh} (VM_NOHUGEPAGE) from its first page to its last. */
    @Test
    void everyReservedRegionIsAdvisedNoHugePagesWholly() throws IOException {
        assumeTrue(Files.exists(THP_ENABLED), "skipped: this kernel has no transparent huge pages");
        try (Arena arena = Arena.ofShared()) {
            for (MemorySegment region : List.of(NativeMemory.reserve(BYTES, arena),
                    NativeMemory.reserve(BYTES, PAGE, arena), NativeMemory.reserve(BYTES, 0, arena))) {
                for (long address : new long[] {region.address(), region.address() + BYTES - PAGE}) {
                    List<String> flags = List.of(smapsField(address, "VmFlags").split(" "));
                    assertTrue(flags.contains("nh"), "VmFlags at 0x" + Long.toHexString(address) + ": " + flags);
                }
            }
        }
    }

    /**
     * Where the host gives every anonymous mapping huge pages, writing every page of a region still backs
     * none of it with one. Where {@code enabled} is not {@code always} (this project's machine kind has
     * {@code madvise}) and the test may write it (root), it sets {@code always} for the test and puts the
     * setting back after; elsewhere it is skipped. It failed before the advice.
     */
    @Test
    void whereTheHostAlwaysGivesHugePagesTheRegionGetsNone() throws IOException {
        assumeTrue(Files.exists(THP_ENABLED), "skipped: this kernel has no transparent huge pages");
        if (!Files.isWritable(THP_ENABLED)) {
            fillARegionWithTheHostOnAlways();       // sets nothing: runs where the host is on always, else skips
            return;
        }
        try (FileChannel lockFile = FileChannel.open(THP_LOCK, StandardOpenOption.CREATE, StandardOpenOption.WRITE);
                FileLock _ = lockFile.lock()) {
            fillARegionWithTheHostOnAlways();
        }
    }

    private static void fillARegionWithTheHostOnAlways() throws IOException {
        String before = selected(Files.readString(THP_ENABLED));
        boolean changed = false;
        if (!before.equals("always")) {
            try {
                Files.writeString(THP_ENABLED, "always");
                changed = true;
            } catch (IOException | SecurityException readOnly) {
                assumeTrue(false, "skipped: transparent_hugepage/enabled is [" + before + "] and cannot be set here");
            }
        }
        try (Arena arena = Arena.ofShared()) {
            MemorySegment region = NativeMemory.reserve(BYTES, 0, arena);
            for (long offset = 0; offset < BYTES; offset += PAGE) {
                region.set(ValueLayout.JAVA_LONG, offset, offset + 1);
            }
            assertEquals("0 kB", smapsField(region.address(), "AnonHugePages"));
            assertEquals(BYTES >>> 10, Long.parseLong(smapsField(region.address(), "Rss").replaceAll("\\D", "")));
        } finally {
            if (changed) {
                Files.writeString(THP_ENABLED, before);
            }
        }
    }

    /** The bracketed choice of a sysfs setting such as {@code "always [madvise] never"}. */
    private static String selected(String setting) {
        int open = setting.indexOf('[');
        return open < 0 ? setting.trim() : setting.substring(open + 1, setting.indexOf(']', open));
    }

    /** The value of {@code field} in the /proc/self/smaps entry of the mapping that holds {@code address}. */
    private static String smapsField(long address, String field) throws IOException {
        boolean inside = false;
        for (String line : Files.readAllLines(Path.of("/proc/self/smaps"))) {
            if (line.matches("^[0-9a-f]+-[0-9a-f]+ .*")) {
                String[] range = line.substring(0, line.indexOf(' ')).split("-");
                inside = Long.parseUnsignedLong(range[0], 16) <= address
                        && address < Long.parseUnsignedLong(range[1], 16);
            } else if (inside && line.startsWith(field + ":")) {
                return line.substring(field.length() + 1).trim();
            }
        }
        throw new IOException("no " + field + " for 0x" + Long.toHexString(address) + " in /proc/self/smaps");
    }
}
