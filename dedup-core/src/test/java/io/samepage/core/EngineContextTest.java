package io.samepage.core;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import org.junit.jupiter.api.Test;

/** A context concludes once and makes one engine; knobs are set by their sysfs names with KSM's rules. */
class EngineContextTest {

    @Test
    void aContextConcludesOnceAndMakesOneEngine() {
        EngineContext context = new EngineContext().poolBytes(1L << 20).conclude();
        assertEquals(DedupException.Kind.INVALID_ARGUMENT, assertThrows(DedupException.class, context::conclude).kind());
        try (DedupEngine engine = DedupEngine.create(context)) {
            DedupException second = assertThrows(DedupException.class, () -> DedupEngine.create(context));
            assertEquals(DedupException.Kind.INVALID_ARGUMENT, second.kind(), "two engines would share one live ScanKnobs");
            assertEquals(ScanKnobs.DEFAULT_PAGES_TO_SCAN, engine.knobs().pagesToScan());
        }
    }

    @Test
    void knobsAreSetByTheirSysfsNamesAndKeepTheirValueWhenRefused() {
        ScanKnobs knobs = new ScanKnobs();
        knobs.set("pages_to_scan", "1000").set("sleep_millisecs", "0").set("use_zero_pages", "1")
                .set("advisor_mode", "scan-time").set("advisor_max_cpu", "40");
        assertEquals(1000, knobs.pagesToScan());
        assertEquals(0, knobs.sleepMillis());
        assertEquals(true, knobs.useZeroPages());
        assertEquals(AdvisorMode.SCAN_TIME, knobs.advisorMode());
        assertEquals(40, knobs.advisorMaxCpu());
        assertEquals(12, ScanKnobs.NAMES.size(), "every knob of /sys/kernel/mm/ksm that Samepage keeps, and scan_threads");
        assertEquals(DedupException.Kind.INVALID_ARGUMENT,
                assertThrows(DedupException.class, () -> knobs.set("pages_to_scann", "1")).kind());
        assertEquals(DedupException.Kind.INVALID_ARGUMENT,
                assertThrows(DedupException.class, () -> knobs.set("use_zero_pages", "yes")).kind());
        assertEquals(DedupException.Kind.KNOB_REFUSED,
                assertThrows(DedupException.class, () -> knobs.set("pages_to_scan", "5")).kind(),
                "the advisor steers pages_to_scan");
        assertEquals(true, knobs.useZeroPages(), "a refused value leaves the knob as it was");
    }

    /** A pool whose frame table the heap cannot hold is refused by conclude, not by an OutOfMemoryError later. */
    @Test
    void aPoolWhoseTableTheHeapCannotHoldIsRefused() {
        long tooLarge = EngineContext.MAX_POOL_BYTES;
        org.junit.jupiter.api.Assumptions.assumeTrue(FrameTable.heapBytes(tooLarge >> 12) > Runtime.getRuntime().maxMemory(),
                "this JVM's heap holds the largest pool's table");
        DedupException refused = assertThrows(DedupException.class,
                () -> new EngineContext().poolBytes(tooLarge).conclude());
        assertEquals(DedupException.Kind.INVALID_ARGUMENT, refused.kind());
        org.junit.jupiter.api.Assertions.assertTrue(refused.getMessage().contains("of Java heap for its frame table"),
                refused.getMessage());
    }

    /**
     * ScanKnobs.set with a null name or value threw NullPointerException for some knobs; a whole number
     * too large for a long was "not a whole number"; one below an int's range was "at most 2147483647".
     */
    @Test
    void knobValuesOutOfEveryRangeAreNamedForWhatTheyAre() {
        ScanKnobs knobs = new ScanKnobs();
        for (String[] bad : new String[][] {{null, "1"}, {"use_zero_pages", null}, {"advisor_mode", null},
            {"pages_to_scan", null}}) {
            assertEquals(DedupException.Kind.INVALID_ARGUMENT,
                    assertThrows(DedupException.class, () -> knobs.set(bad[0], bad[1])).kind());
        }
        assertEquals("sleep_millisecs must be between -9223372036854775808 and 9223372036854775807, not 9999999999999999999",
                assertThrows(DedupException.class, () -> knobs.set("sleep_millisecs", "9999999999999999999")).getMessage());
        assertEquals("pages_to_scan must be at least -2147483648, not -3000000000",
                assertThrows(DedupException.class, () -> knobs.set("pages_to_scan", "-3000000000")).getMessage());
        assertEquals("pages_to_scan must be a whole number, not '1e3'",
                assertThrows(DedupException.class, () -> knobs.set("pages_to_scan", "1e3")).getMessage());
    }
}
