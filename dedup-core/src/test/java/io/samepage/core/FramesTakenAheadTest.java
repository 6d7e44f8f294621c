package io.samepage.core;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.samepage.hashing.Pages;
import io.samepage.linux.NativeMemory;
import java.util.BitSet;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * Frames taken at once and populated for their taker ({@link FramePool#allocateForOverwrite(int[], int)})
 * and the writes that use them: a write that needs many fresh frames takes them from its reservation
 * and asks the backing to populate the cold or never-used ones, in runs; warm frames are left out;
 * guests writing side by side each get frames populated for them; and the hint changes nothing else,
 * failing or not.
 */
class FramesTakenAheadTest {

    private static final int PAGE = Pages.PAGE_SIZE;

    @BeforeEach
    void framesGoBackToTheOs() {
        Assumptions.assumeTrue(NativeMemory.available(), "frames are populated only where they go back to the OS");
    }

    /** Takes frames 1 to 40, then frees 1 to 8 (warm: the pool's limit is 8) and 11 to 30 one by one (cold, 30 on top). */
    private static void eightWarmTwentyColdFreedOneByOne(FramePool pool) {
        assertTrue(pool.tryReserve(40));
        for (int i = 0; i < 40; i++) {
            pool.allocateReserved();
        }
        for (int frame = 1; frame <= 8; frame++) {
            pool.free(frame);
        }
        for (int frame = 11; frame <= 30; frame++) {
            pool.free(frame);
        }
    }

    /** Takes frames 1 to 12, then frees 1 and 2 (warm: the pool's limit is 2) and 3, 4, 8 and 9 (cold). */
    private static void twoWarmFourColdSixInUse(FramePool pool) {
        assertTrue(pool.tryReserve(12));
        for (int i = 0; i < 12; i++) {
            pool.allocateReserved();
        }
        pool.freeAll(new int[] {1, 2}, 2);
        pool.freeAll(new int[] {3, 4, 8, 9}, 4);
    }

    /**
     * Frames freed one at a time in address order lie on the cold list highest first: they are still
     * one run, for frames taken at once and for the warm-list refill alike (each walked 64 runs at most
     * when only ascending neighbours counted, so most of such a list went unpopulated).
     */
    @Test
    void framesFreedOneByOneAreOneRunEitherWay() {
        PopulateRecording recording = new PopulateRecording();
        try (FramePool pool = new FramePool(64L * PAGE, 8, recording.factory())) {
            eightWarmTwentyColdFreedOneByOne(pool);
            int[] frames = new int[28];
            assertTrue(pool.allocateForOverwrite(frames, 8 + 20));
            BitSet cold = new BitSet();
            cold.set(11, 31);
            assertEquals(cold, recording.frames());
            assertEquals(1, recording.calls(), "one run");
        }
        try (FramePool pool = new FramePool(64L * PAGE, 8, recording.factory())) {
            eightWarmTwentyColdFreedOneByOne(pool);
            recording.clear();
            assertTrue(pool.tryReserve(8));
            for (int i = 0; i < 8; i++) {
                pool.allocateReserved();                       // empties the warm list
            }
            assertEquals(8, pool.replenishWarm(8));            // takes 30 down to 23
            BitSet refilled = new BitSet();
            refilled.set(23, 31);
            assertEquals(refilled, recording.frames());
            assertEquals(1, recording.calls(), "one run");
        }
    }

    /**
     * A write of 64 pages to a fresh guest populates, before it writes them, exactly the frames it then
     * takes; a write of fewer pages than {@link FramePool#POPULATE_MIN_FRAMES} does not ask.
     */
    @Test
    void aLargeWritePopulatesTheFramesItTakes() {
        PopulateRecording recording = new PopulateRecording();
        try (DedupEngine engine = DedupEngine.create(new EngineContext().poolBytes(256L * PAGE).warmFrames(0)
                .frameBacking(recording.factory()).hashSeed(9).conclude())) {
            MergeDomain domain = engine.createDomain("d");
            Guest small = engine.createGuest(domain, "small", 8L * PAGE);
            small.write(0, new byte[8 * PAGE], 0, 8 * PAGE);
            assertEquals(0, recording.calls(), "8 pages: no call");
            Guest large = engine.createGuest(domain, "large", 64L * PAGE);
            byte[] bytes = new byte[64 * PAGE];
            new SplittableRandom(3).nextBytes(bytes);
            large.write(0, bytes, 0, bytes.length);
            BitSet taken = new BitSet();
            for (int page = 0; page < 64; page++) {
                taken.set(large.frameAt(page));
            }
            assertEquals(taken, recording.frames(), "the frames populated are the frames the write took");
            byte[] back = new byte[bytes.length];
            large.read(0, back, 0, back.length);
            assertArrayEquals(bytes, back);
        }
    }

    /** A populate that throws on every call: the write still writes every byte and takes its frames. */
    @Test
    void aWriteWhosePopulateFailsWritesAsWithout() {
        FrameBacking.Factory failing = ForwardingBacking.failingPopulate();
        try (DedupEngine engine = DedupEngine.create(new EngineContext().poolBytes(256L * PAGE).warmFrames(0)
                .frameBacking(failing).hashSeed(9).conclude())) {
            Guest guest = engine.createGuest(engine.createDomain("d"), "g", 64L * PAGE);
            byte[] bytes = new byte[64 * PAGE];
            new SplittableRandom(4).nextBytes(bytes);
            guest.write(0, bytes, 0, bytes.length);
            byte[] back = new byte[bytes.length];
            guest.read(0, back, 0, back.length);
            assertArrayEquals(bytes, back);
            assertEquals(64, engine.framesInUse() - 1, "64 frames and the zero frame");
        }
    }

    /**
     * {@link FramePool#allocateForOverwrite(int[], int)}: the same two warm, four cold and never-used
     * frames as above; taking 20 at once takes the two warm ones first, then the cold four and 14 never
     * used, and populates exactly the 18 not resident in three runs; taking more than are available
     * takes nothing and asks nothing; fewer than {@link FramePool#POPULATE_MIN_FRAMES} are taken without
     * a call.
     */
    @Test
    void framesTakenAtOnceAreAllOrNothingAndTheirColdOnesArePopulatedInRuns() {
        PopulateRecording recording = new PopulateRecording();
        try (FramePool pool = new FramePool(64L * PAGE, 2, recording.factory())) {
            twoWarmFourColdSixInUse(pool);
            int[] frames = new int[64];
            int available = pool.framesAvailable();
            assertFalse(pool.allocateForOverwrite(frames, available + 1));
            assertEquals(available, pool.framesAvailable(), "nothing taken");
            assertEquals(0, recording.calls(), "nothing asked");

            assertTrue(pool.allocateForOverwrite(frames, 20));
            BitSet taken = new BitSet();
            for (int i = 0; i < 20; i++) {
                taken.set(frames[i]);
                assertEquals(1, pool.table().refCount(frames[i]), "frame " + frames[i]);
            }
            BitSet expected = new BitSet();
            expected.set(1, 5);
            expected.set(8, 10);
            expected.set(13, 27);
            assertEquals(expected, taken);
            expected.clear(1, 3);                              // the warm two are resident
            assertEquals(expected, recording.frames());
            assertEquals(3, recording.calls(), "one call per run");
            assertEquals(available - 20, pool.framesAvailable());
            assertEquals(26, pool.framesInUse(), "6 before, 20 now");

            recording.clear();
            assertTrue(pool.allocateForOverwrite(frames, FramePool.POPULATE_MIN_FRAMES - 1));
            assertEquals(0, recording.calls(), "too few to ask for");
            pool.freeAll(frames, FramePool.POPULATE_MIN_FRAMES - 1);
            assertEquals(26, pool.framesInUse(), "given back");
        }
    }

    /** A populate that throws: the frames are still taken, all of them, and go back as any others. */
    @Test
    void framesTakenAtOnceWhosePopulateFailsAreTakenAsWithout() {
        FrameBacking.Factory failing = ForwardingBacking.failingPopulate();
        try (FramePool pool = new FramePool(256L * PAGE, 0, failing)) {
            int[] frames = new int[64];
            assertTrue(pool.allocateForOverwrite(frames, 64));
            assertEquals(64, pool.framesInUse());
            assertEquals(64, java.util.Arrays.stream(frames).distinct().count());
            pool.freeAll(frames, 64);
            assertEquals(0, pool.framesInUse());
            assertEquals(255, pool.framesAvailable());
        }
    }

    /**
     * Two guests write 8 MiB each side by side: every frame they take was populated once, for the write
     * that took it. When each write asked to populate the free lists' next frames and then took frames
     * one at a time, both asked for the same frames and took them turn about, so a share of the frames
     * went unpopulated and paid a page fault each (measured with 64 MiB each: 16,819 to 24,316 of
     * 32,768 frames populated).
     */
    @Test
    void guestsWritingSideBySideEachWriteFramesPopulatedForThem() throws Exception {
        int pages = 2048;
        PopulateRecording recording = new PopulateRecording();
        try (DedupEngine engine = DedupEngine.create(new EngineContext().poolBytes((2L * pages + 64) * PAGE)
                .warmFrames(0).frameBacking(recording.factory()).hashSeed(9).conclude())) {
            MergeDomain domain = engine.createDomain("d");
            Guest[] guests = {engine.createGuest(domain, "a", (long) pages * PAGE),
                    engine.createGuest(domain, "b", (long) pages * PAGE)};
            byte[] bytes = new byte[pages * PAGE];
            new SplittableRandom(5).nextBytes(bytes);
            java.util.concurrent.CyclicBarrier start = new java.util.concurrent.CyclicBarrier(2);
            Thread[] writers = new Thread[2];
            java.util.concurrent.atomic.AtomicReference<Throwable> failed = new java.util.concurrent.atomic.AtomicReference<>();
            for (int g = 0; g < 2; g++) {
                Guest guest = guests[g];
                writers[g] = Thread.ofPlatform().start(() -> {
                    try {
                        start.await();
                        guest.write(0, bytes, 0, bytes.length);
                    } catch (Throwable t) {
                        failed.set(t);
                    }
                });
            }
            for (Thread writer : writers) {
                writer.join();
            }
            assertEquals(null, failed.get());
            BitSet taken = new BitSet();
            for (Guest guest : guests) {
                for (int page = 0; page < pages; page++) {
                    taken.set(guest.frameAt(page));
                }
                byte[] back = new byte[bytes.length];
                guest.read(0, back, 0, back.length);
                assertArrayEquals(bytes, back);
            }
            assertEquals(2 * pages, taken.cardinality());
            BitSet unpopulated = (BitSet) taken.clone();
            unpopulated.andNot(recording.frames());
            assertEquals(0, unpopulated.cardinality(), "frames the writes took that were never populated");
            assertEquals(2L * pages, recording.framesAsked(), "frames populated, each once");
        }
    }
}
