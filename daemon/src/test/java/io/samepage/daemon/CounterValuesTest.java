package io.samepage.daemon;

import static org.junit.jupiter.api.Assertions.assertEquals;

import io.samepage.core.EngineCounters;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.stream.LongStream;
import org.junit.jupiter.api.Test;

/** What the publisher writes into the counters file: every engine counter, under its own id. */
class CounterValuesTest {

    @Test
    void everyEngineCounterAndTheGuestCountReachTheCountersFileEachUnderItsName() {
        // Each field its own value, 1 to 16, and 17 guests: a counter left out reads 0, two swapped read wrong.
        EngineCounters c = new EngineCounters(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16);
        long[] values = DaemonMetrics.values(c, 17);

        Map<String, Long> expected = new TreeMap<>(Map.ofEntries(
                Map.entry("pages_shared", 1L), Map.entry("pages_sharing", 2L), Map.entry("pages_unshared", 3L),
                Map.entry("pages_volatile", 4L), Map.entry("full_scans", 5L), Map.entry("pages_scanned", 6L),
                Map.entry("pages_skipped", 7L), Map.entry("ksm_zero_pages", 8L),
                Map.entry("stable_node_chains", 9L), Map.entry("stable_node_dups", 10L),
                Map.entry("general_profit", 11L), Map.entry("pages_total", 12L), Map.entry("metadata_bytes", 13L),
                Map.entry("frames_in_use", 14L), Map.entry("frame_release_failures", 15L),
                Map.entry("frames_withheld", 16L), Map.entry("guests", 17L)));
        Map<String, Long> written = new TreeMap<>();
        for (int id = 0; id < values.length; id++) {
            written.put(CountersFile.COUNTER_NAMES.get(id), values[id]);
        }
        assertEquals(expected, written, "the counters file's names and values");
        List<Long> all = new ArrayList<>(written.values());
        all.sort(null);
        assertEquals(LongStream.rangeClosed(1, 17).boxed().toList(), all, "each counter once");
    }

    @Test
    void theFrameCountersAreAppendedSoNoOlderIdChangesMeaning() {
        assertEquals("guests", CountersFile.COUNTER_NAMES.get(14));
        assertEquals("frame_release_failures", CountersFile.COUNTER_NAMES.get(15));
        assertEquals("frames_withheld", CountersFile.COUNTER_NAMES.get(16));
    }
}
