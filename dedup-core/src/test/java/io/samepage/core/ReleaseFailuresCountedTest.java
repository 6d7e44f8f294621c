package io.samepage.core;

import static io.samepage.core.FailingRelease.block;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.samepage.hashing.Pages;
import java.util.concurrent.atomic.AtomicBoolean;
import org.junit.jupiter.api.Test;

/**
 * Where the frame backing fails to give a frame's memory back, the frame is zeroed in place and the
 * failure is counted in {@link EngineCounters#frameReleaseFailures}, one per frame, and not thrown
 * ({@link FramePool}'s "Release failures"): the work that freed it is done and the engine whole. Before,
 * an {@link Error} from the backing came out of whatever freed the frame (here a scan's batch of freed
 * frames, and a mapped guest's all-zero page released in place), and a refusal was swallowed unseen.
 */
class ReleaseFailuresCountedTest {

    private static final int PAGE = Pages.PAGE_SIZE;
    private static final int PAGES = 4;

    private final AtomicBoolean armed = new AtomicBoolean();
    private final EngineContext context = FailingRelease.contextFailingBatchesToo(armed);

    /** The frames a merge pass leaves go back together; that batch's release throws. */
    @Test
    void aScanWhoseFreedFramesCannotBeReleasedMergesAndCountsThem() {
        try (DedupEngine engine = DedupEngine.create(context.conclude())) {
            MergeDomain domain = engine.createDomain("d");
            long domainFrames = engine.framesInUse();
            Guest a = engine.createGuest(domain, "a", (long) PAGES * PAGE);
            Guest b = engine.createGuest(domain, "b", (long) PAGES * PAGE);
            for (int page = 0; page < PAGES; page++) {
                a.write((long) page * PAGE, block(page + 1), 0, PAGE);
                b.write((long) page * PAGE, block(page + 1), 0, PAGE);
            }
            armed.set(true);
            engine.scanner().scanUntilStable(Scanner.DEFAULT_MAX_FULL_SCANS_TO_SETTLE);
            assertFalse(armed.get(), "the batch release was reached");
            assertEquals(PAGES, engine.counters().pagesSharing(), "every pair merged");
            assertEquals(PAGES, engine.counters().frameReleaseFailures(), "one failure per frame of the batch");
            assertEquals(domainFrames + PAGES, engine.framesInUse(), "the frames the merges left are free");
            for (int page = 0; page < PAGES; page++) {
                assertArrayEquals(block(page + 1), read(a, page));
                assertArrayEquals(block(page + 1), read(b, page));
            }
            EngineInvariants.assertConsistentWithHasherOf(context, engine, "after the scan");
        }
    }

    /** A mapped guest's page filled with zeros keeps its frame and gives its memory back in place. */
    @Test
    void aMappedPageZeroedWhoseMemoryCannotBeReleasedReadsZeros() {
        RecordingMapping[] map = new RecordingMapping[1];
        try (DedupEngine engine = DedupEngine.create(context.conclude())) {
            MergeDomain domain = engine.createDomain("d");
            Guest guest = engine.createGuest(domain, "g", PAGE, (first, count) -> map[0] = new RecordingMapping(first, count));
            guest.write(0, block(9), 0, PAGE);
            armed.set(true);
            guest.fill(0, PAGE, (byte) 0);
            assertFalse(armed.get(), "the release in place was reached");
            assertEquals(1, engine.counters().frameReleaseFailures());
            assertArrayEquals(new byte[PAGE], read(guest, 0), "the page reads zeros");
            assertTrue(guest.isPrivate(0), "it keeps its frame");
            EngineInvariants.assertConsistentWithHasherOf(context, engine, "after the fill");
        }
    }

    private static byte[] read(Guest guest, int page) {
        byte[] bytes = new byte[PAGE];
        guest.read((long) page * PAGE, bytes, 0, PAGE);
        return bytes;
    }
}
