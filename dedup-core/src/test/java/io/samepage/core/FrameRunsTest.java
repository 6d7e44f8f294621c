package io.samepage.core;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

/** {@link FrameRuns}: neighbours either way make one run; a full set refuses a new run and keeps what it has. */
class FrameRunsTest {

    private static String runs(FrameRuns runs) {
        StringBuilder s = new StringBuilder();
        for (int i = 0; i < runs.count(); i++) {
            s.append(i == 0 ? "" : " ").append(runs.first(i)).append('+').append(runs.length(i));
        }
        return s.toString();
    }

    @Test
    void ascendingAndDescendingNeighboursExtendTheLastRun() {
        FrameRuns runs = new FrameRuns(4);
        for (int frame : new int[] {5, 6, 7, 20, 19, 18, 40}) {
            assertTrue(runs.add(frame));
        }
        assertTrue(runs.add(41, 10));
        assertEquals("5+3 18+3 40+11", runs(runs));
        assertEquals(17, runs.frames());
    }

    @Test
    void aFullSetRefusesANewRunButStillExtendsItsLast() {
        FrameRuns runs = new FrameRuns(2);
        assertTrue(runs.add(1));
        assertTrue(runs.add(10));
        assertFalse(runs.add(30), "a third run");
        assertFalse(runs.add(30, 4), "a third run");
        assertTrue(runs.add(11), "extends the second");
        assertTrue(runs.add(9), "extends the second downwards");
        assertEquals("1+1 9+3", runs(runs));
        runs.clear();
        assertEquals(0, runs.count());
        assertTrue(runs.add(30));
        assertEquals("30+1", runs(runs));
        assertThrows(IllegalArgumentException.class, () -> new FrameRuns(0));
    }
}
