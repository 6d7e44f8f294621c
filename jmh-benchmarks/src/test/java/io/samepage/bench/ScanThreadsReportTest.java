package io.samepage.bench;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.samepage.hashing.Pages;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * The reports' threads: a part that fails on a helper thread fails the report instead of shrinking its
 * figure; the CPU reference counts each thread's loops until its deadline, and none after it.
 */
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

    /** A loop past its deadline counts nothing; one with time left counts at least one loop, on every thread. */
    @Test
    @Timeout(value = 60, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
    void theCpuReferenceCountsLoopsUntilItsDeadline() {
        assertEquals(0, ScanThreadsReport.spin(System.nanoTime() - 1), "a deadline already past");
        assertTrue(ScanThreadsReport.spin(System.nanoTime() + 10_000_000L) > 0, "10 ms to run");
        double one = ScanThreadsReport.loopsPerSecond(1);
        double two = ScanThreadsReport.loopsPerSecond(2);
        assertTrue(one > 0 && Double.isFinite(one), "one thread: " + one);
        assertTrue(two > 0 && Double.isFinite(two), "two threads: " + two);
    }
}
