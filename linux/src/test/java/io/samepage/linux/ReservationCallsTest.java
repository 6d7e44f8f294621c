package io.samepage.linux;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;

/**
 * The calls that give pages of a guest range back to its reservation ({@link MemfdCalls#reserveAgain},
 * {@link MemfdCalls#reserveIfFree}) and take part of it down ({@link MemfdCalls#unmap}), seen in
 * {@code /proc/self/maps} at the addresses of a range the test reserved itself.
 */
class ReservationCallsTest {

    private static final long PAGE = MemfdCalls.PAGE;
    /** How {@code /proc/self/maps} shows an anonymous, private {@code PROT_NONE} mapping: a reservation. */
    private static final String RESERVATION = "---p";

    @Test
    void reserveIfFreeNeverReplacesAMappingWhereReserveAgainDoes() throws IOException {
        assumeTrue(MemfdCalls.unavailableReason() == null, "skipped: " + MemfdCalls.unavailableReason());
        int fd = MemfdCalls.create("reservation-calls", PAGE);
        assumeTrue(fd >= 0, "skipped: memfd_create failed with " + fd);
        try (Arena arena = Arena.ofShared()) {
            MemorySegment range = MemfdCalls.reserve(3 * PAGE, arena);
            assertNotNull(range, "reserving 3 pages");
            long page1 = range.address() + PAGE;
            assertEquals(0, MemfdCalls.map(range, PAGE, PAGE, fd, 0, true));

            assertEquals(-Abi.EEXIST, MemfdCalls.reserveIfFree(range, PAGE, PAGE), "a mapping is there");
            assertEquals("rw-s /memfd:reservation-calls (deleted)", mappingAt(page1), "and it is untouched");
            assertEquals(-Abi.EEXIST, MemfdCalls.reserveIfFree(range, 0, PAGE), "the reservation is a mapping too");

            assertEquals(0, MemfdCalls.reserveAgain(range, PAGE, PAGE));
            assertEquals(RESERVATION, mappingAt(page1), "replaced by the reservation's kind of mapping");

            long page2 = range.address() + 2 * PAGE;
            assertEquals(0, MemfdCalls.unmap(range, 2 * PAGE, PAGE));
            assertEquals(0, MemfdCalls.reserveIfFree(range, 2 * PAGE, PAGE), "nothing is mapped there now");
            assertEquals(RESERVATION, mappingAt(page2));
        } finally {
            MemfdCalls.close(fd);
        }
    }

    /**
     * The permissions and, if any, the path of the mapping of this process holding {@code address}; null
     * if none does. Asked only of addresses of the range this test reserved.
     */
    private static String mappingAt(long address) throws IOException {
        for (String line : Files.readAllLines(Path.of("/proc/self/maps"), StandardCharsets.ISO_8859_1)) {
            String[] fields = line.split(" +", 6);
            String[] span = fields[0].split("-");
            if (Long.compareUnsigned(Long.parseUnsignedLong(span[0], 16), address) <= 0
                    && Long.compareUnsigned(address, Long.parseUnsignedLong(span[1], 16)) < 0) {
                return fields.length < 6 || fields[5].isBlank() ? fields[1] : fields[1] + " " + fields[5].strip();
            }
        }
        return null;
    }
}
