package io.samepage.core;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import io.samepage.hashing.Pages;
import java.util.Arrays;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;

/** A nearly full pool: work the pool can do is never refused, and work it cannot do changes nothing. */
class PoolPressureTest {

    private static final int PAGE = Pages.PAGE_SIZE;

    @Test
    void refillingTheWarmListNeverRefusesAWriteWhileFramesAreFree() throws Exception {
        // 65 frames: the zero frame and 64 that the guest's writes take and its zero fills give back, 32 of
        // them to the warm list and 32 to the operating system, which the scanner's refill faults in again.
        EngineContext context = new EngineContext().poolBytes(65L * PAGE).warmFrames(32).hashSeed(1);
        try (DedupEngine engine = DedupEngine.create(context.conclude())) {
            Guest guest = engine.createGuest(engine.createDomain("d"), "g", 64L * PAGE);
            AtomicBoolean stop = new AtomicBoolean();
            AtomicReference<Throwable> scannerFailed = new AtomicReference<>();
            Thread scanner = new Thread(() -> {
                try {
                    while (!stop.get()) {
                        engine.scanner().scanBatch(0);      // a batch ends by refilling the warm list
                    }
                } catch (Throwable t) {
                    scannerFailed.set(t);
                }
            });
            scanner.start();
            byte[] half = new byte[32 * PAGE];
            Arrays.fill(half, (byte) 7);
            int refused = 0;
            int rounds = 1000;
            try {
                for (int i = 0; i < rounds; i++) {
                    for (int h = 0; h < 2; h++) {
                        try {
                            guest.write((long) h * half.length, half, 0, half.length);   // takes 32 frames
                        } catch (DedupException e) {
                            refused++;
                        }
                    }
                    guest.fill(0, 64L * PAGE, (byte) 0);                               // gives them back
                }
            } finally {
                stop.set(true);
                scanner.join();
            }
            assertEquals(null, scannerFailed.get());
            assertEquals(0, refused, "writes refused as 'pool exhausted' out of " + 2 * rounds
                    + ", though the 64 frames they needed were free");
        }
    }

    /** A guest of 7 pages, 6 of them merged onto one frame, and one private, in a pool of {@code frames} frames. */
    private static DedupEngine mergedSixOfSeven(int frames) {
        EngineContext context = new EngineContext().poolBytes((long) frames * PAGE).warmFrames(0).hashSeed(1);
        DedupEngine engine = DedupEngine.create(context.conclude());
        Guest guest = engine.createGuest(engine.createDomain("d"), "g", 7L * PAGE);
        for (int p = 0; p < 6; p++) {
            guest.write((long) p * PAGE, SAME, 0, PAGE);
            engine.scanner().scanFullPass();
            engine.scanner().scanFullPass();
        }
        guest.write(6L * PAGE, new byte[] {1}, 0, 1);
        engine.scanner().scanFullPass();
        engine.scanner().scanFullPass();
        EngineCounters merged = engine.counters();
        assertEquals(1, merged.pagesShared());
        assertEquals(5, merged.pagesSharing());
        return engine;
    }

    private static final byte[] SAME = new byte[PAGE];

    static {
        Arrays.fill(SAME, (byte) 9);
    }

    @Test
    void unmergeWithTooFewFramesUnmergesNothingAndStops() {
        // 7 frames: the zero frame, 1 shared frame for 6 merged pages, 1 private; 4 free for 5 copies.
        try (DedupEngine engine = mergedSixOfSeven(7)) {
            engine.knobs().run(ScanKnobs.RUN_UNMERGE);
            DedupException shortage = assertThrows(DedupException.class, () -> engine.scanner().doWork(),
                    "the shortage is reported");
            assertEquals(DedupException.Kind.POOL_EXHAUSTED, shortage.kind());
            assertEquals(ScanKnobs.RUN_STOP, engine.knobs().run(), "run goes back to 0, as KSM does on ENOMEM");
            EngineCounters after = engine.counters();
            assertEquals(1, after.pagesShared(), "nothing was unmerged: it was all or nothing");
            assertEquals(5, after.pagesSharing());
            assertEquals(0, engine.scanner().doWork(), "and the scanner does not retry");
            EngineInvariants.assertConsistent(engine, null, "after the refused unmerge");
        }
    }

    /**
     * A pool with room for every page unmerged (the daemon's default: its sources' bytes) unmerges: the
     * shared frame's last mapper takes it back, so 6 merged pages need 5 frames. Asking for 6 refused
     * {@code run=2} on every such pool.
     */
    @Test
    void unmergeNeedsAFrameForEachSharingPageOnly() {
        // 8 frames: the zero frame, 1 shared frame for 6 merged pages, 1 private; 5 free for 5 copies.
        try (DedupEngine engine = mergedSixOfSeven(8)) {
            engine.knobs().run(ScanKnobs.RUN_UNMERGE);
            engine.scanner().doWork();
            EngineCounters after = engine.counters();
            assertEquals(0, after.pagesShared(), "unmerged: " + after);
            assertEquals(0, after.pagesSharing(), "unmerged: " + after);
            assertEquals(8, engine.framesInUse(), "every frame of the pool: 7 private pages and the zero frame");
            Guest guest = engine.guests().get(0);
            byte[] back = new byte[PAGE];
            for (int p = 0; p < 6; p++) {
                guest.read((long) p * PAGE, back, 0, PAGE);
                assertArrayEquals(SAME, back, "page " + p);
            }
            EngineInvariants.assertConsistent(engine, null, "after the unmerge");
            engine.scanner().scanUntilStable(Scanner.DEFAULT_MAX_FULL_SCANS_TO_SETTLE);
            assertEquals(5, engine.counters().pagesSharing(), "and they merge again");
        }
    }
}
