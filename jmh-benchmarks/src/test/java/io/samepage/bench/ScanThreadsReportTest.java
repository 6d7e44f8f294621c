package io.samepage.bench;

import static org.junit.jupiter.api.Assertions.assertThrows;

import io.samepage.hashing.Pages;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** The reports' threads: a part that fails on a helper thread fails the report instead of shrinking its figure. */
class ScanThreadsReportTest {

    /**
     * The read reference on two threads, over memory the helper thread may not read (a confined arena's):
     * the helper's failure went to the uncaught-exception handler, and the reference returned pages per
     * second as if both halves had been read.
     */
    @Test
    @Timeout(value = 60, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
    void aHelperThreadThatFailsFailsTheReadReference() {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment region = arena.allocate(2L * Pages.PAGE_SIZE, Pages.PAGE_SIZE);
            assertThrows(WrongThreadException.class, () -> ScanThreadsReport.readPagesPerSecond(region, 2));
        }
    }
}
