package io.samepage.density;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import org.junit.jupiter.api.Test;

/** The demo's merge part end to end on two small guests; {@link DemoWorkloadTest} checks its counters. */
class DemoMergeTest {

    @Test
    void mergingFreesFramesAndTheWritesAfterMergeTakeOneEach() {
        DemoMerge.Result merge = DemoMerge.run(2, 1);
        List<DemoMerge.Stage> stages = merge.stages();
        assertEquals(List.of("before merging", "after merging", "after copy-on-write"),
                stages.stream().map(DemoMerge.Stage::name).toList());
        assertTrue(stages.get(1).framesInUse() < stages.get(0).framesInUse(), "merging frees frames");
        assertEquals(stages.get(1).framesInUse() + 2L * merge.writesAfterMerge(), stages.get(2).framesInUse(),
                "each write after merging breaks one shared page");
        assertEquals(2L * 2 * 256, merge.pagesVerified(), "every page of both guests, twice");
        assertEquals(2, stages.get(2).guests().size());
    }

    @Test
    void guestsLargerThanTheHostAreRefusedBeforeAnythingRuns() {
        DemoMerge.checkFits(4, 64, 256L << 20);
        DensityException e = assertThrows(DensityException.class, () -> DemoMerge.checkFits(4, 64, 255L << 20));
        assertEquals(DensityException.Kind.TOO_LARGE, e.kind());
        assertEquals("--guests 4 --guest-mib 64: the guests need 256 MiB of host memory before merging; this host "
                + "has 255 MiB", e.getMessage());
    }
}
