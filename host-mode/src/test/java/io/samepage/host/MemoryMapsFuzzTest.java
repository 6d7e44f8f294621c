package io.samepage.host;

import io.samepage.linux.PageMapEntry;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.code_intelligence.jazzer.junit.FuzzTest;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.LongBuffer;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.regex.Pattern;

/**
 * Coverage-guided fuzzing of the {@code /proc/PID/maps} parser (complementing the seeded corruption
 * in {@link MemoryMapsTest}): any text either parses into regions that satisfy the record's invariants
 * and read back the same from their own {@link MemoryRegion#toString()}, or is refused with one
 * {@link ProcessScanException} of kind IO whose message is one printable line naming the pid and the
 * line number. The same bytes, read as little-endian 64-bit words, are also decoded as
 * {@code /proc/PID/pagemap} entries ({@link PageMapEntry}), which must hold for every value.
 *
 * <p>The seeds ({@code MemoryMapsFuzzTestInputs/}) are real maps: a QEMU TCG guest's, a process's on
 * this project's host (awk), the pseudo-mappings ({@code [heap]}, {@code [vvar]}, {@code [vsyscall]},
 * ...), and anonymous, memfd and {@code [vsyscall]} lines. In {@code ./mvnw verify} this runs for the
 * bound below (see docs/fuzzing.md).
 */
class MemoryMapsFuzzTest {

    /** A line break or a control character: a message holding one is not one printable line. */
    private static final Pattern NOT_ONE_LINE = Pattern.compile("\\R|\\p{Cntrl}");

    @FuzzTest(maxExecutions = 500_000, maxDuration = "20s")
    void anyMapsTextParsesIntoRegionsOrIsRefusedWithOneLine(byte[] input) {
        String text = new String(input, StandardCharsets.UTF_8);
        try {
            List<MemoryRegion> regions = MemoryMaps.parse(9, text);
            assertTrue(regions.size() <= text.split("\n", -1).length, "more regions than lines");
            for (MemoryRegion region : regions) {
                assertTrue(Long.compareUnsigned(region.start(), region.end()) < 0 && region.pages() > 0, region.toString());
                assertEquals(List.of(region), MemoryMaps.parse(9, region + "\n"), "read back from its own line");
            }
        } catch (ProcessScanException e) {
            assertEquals(ProcessScanException.Kind.IO, e.kind());
            assertTrue(e.getMessage().startsWith("pid 9: /proc/9/maps line "), e.getMessage());
            assertFalse(NOT_ONE_LINE.matcher(e.getMessage()).find(), "not one printable line: " + e.getMessage());
        }
        LongBuffer entries = ByteBuffer.wrap(input).order(ByteOrder.LITTLE_ENDIAN).asLongBuffer();
        while (entries.hasRemaining()) {
            long entry = entries.get();
            long frame = PageMapEntry.frame(entry);
            assertEquals(PageMapEntry.present(entry), frame >= 0);
            assertTrue(frame <= PageMapEntry.FRAME_MASK);
        }
    }
}
