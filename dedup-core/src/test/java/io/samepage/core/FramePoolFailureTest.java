package io.samepage.core;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.samepage.hashing.Pages;
import io.samepage.linux.NativeMemory;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.BitSet;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicReference;
import org.agrona.LangUtil;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A take of reserved frames that throws part way, an {@link Error} included (a fault in a frame's
 * memory, an {@link OutOfMemoryError} in the backing), leaves the pool exactly as it was: the frames
 * free on their lists again, the caller's reservation still held, so that the caller's own failure path
 * (which gives back the frames it reserved and did not take) balances, whatever the backing throws, a
 * checked exception thrown undeclared too. A free whose release throws frees the frame all the same, counts
 * the failure and does not throw it; a fault zeroing the frame in place, not the backing's, passes
 * through. Checked by the pool's counters and by taking every free
 * frame afterwards: each comes back once, and none that is in use. Before, each of these left frames
 * counted in use that no caller held.
 */
class FramePoolFailureTest {

    private static final int PAGE = Pages.PAGE_SIZE;
    private static final int FRAMES = 64;

    /** Anonymous frames whose next populate, once armed, throws {@code error} instead, whatever it is. */
    private static FrameBacking.Factory populateThrowsOnce(AtomicBoolean armed, Throwable error) {
        return frames -> new ForwardingBacking(frames) {
            @Override
            public void populate(int first, int count) {
                if (armed.getAndSet(false)) {
                    LangUtil.rethrowUnchecked(error);
                }
                super.populate(first, count);
            }
        };
    }

    private static void assumePopulated() {
        Assumptions.assumeTrue(NativeMemory.available(), "frames are populated only where they go back to the OS");
    }

    /** Takes frames 1 to 12, then frees 1 to 4 (warm: the pool's limit is 4) and 8 and 9 (cold). */
    private static void fourWarmTwoColdSixInUse(FramePool pool) {
        assertTrue(pool.tryReserve(12));
        for (int i = 0; i < 12; i++) {
            pool.allocateReserved();
        }
        pool.freeAll(new int[] {1, 2, 3, 4}, 4);
        pool.freeAll(new int[] {8, 9}, 2);
        assertEquals(4, pool.warmFrames());
    }

    /** Takes every available frame: each free frame exactly once, none of {@code inUse}. */
    private static void assertEveryFreeFrameTakenOnce(FramePool pool, int... inUse) {
        int available = pool.framesAvailable();
        int[] frames = new int[available];
        assertTrue(pool.allocateForOverwrite(frames, available));
        BitSet taken = new BitSet();
        for (int frame : frames) {
            assertTrue(!taken.get(frame), "frame " + frame + " was handed out twice");
            taken.set(frame);
        }
        BitSet expected = new BitSet();
        expected.set(1, FRAMES);
        for (int frame : inUse) {
            expected.clear(frame);
        }
        assertEquals(expected, taken, "the free frames");
        pool.freeAll(frames, available);
    }

    @Test
    void anErrorWhilePopulatingFramesTakenOutOfAReservationLeavesThePoolAsItWas() {
        assumePopulated();
        AtomicBoolean armed = new AtomicBoolean();
        try (FramePool pool = new FramePool((long) FRAMES * PAGE, 4,
                populateThrowsOnce(armed, new OutOfMemoryError("injected, in the backing's populate")))) {
            fourWarmTwoColdSixInUse(pool);
            int inUse = pool.framesInUse();
            int available = pool.framesAvailable();
            assertTrue(pool.tryReserve(30));
            armed.set(true);
            int[] frames = new int[30];
            assertThrows(OutOfMemoryError.class, () -> pool.allocateReservedForOverwrite(frames, 30));
            assertEquals(inUse, pool.framesInUse(), "frames in use");
            assertEquals(available - 30, pool.framesAvailable(), "the reservation is still held");
            pool.unreserve(30);                 // what the taker's failure path does
            assertEquals(available, pool.framesAvailable());
            assertEquals(4, pool.warmFrames(), "the warm frames are warm again");
            assertEveryFreeFrameTakenOnce(pool, 5, 6, 7, 10, 11, 12);
        }
    }

    @Test
    void anErrorWhilePopulatingFramesTakenAtOnceTakesNothing() {
        aFailureWhilePopulatingFramesTakenAtOnceTakesNothing(new InternalError("injected, in the backing's populate"));
    }

    /**
     * The same for a checked exception the backing throws undeclared: the take caught only unchecked
     * exceptions and errors, so such a one left the frames taken and the reservation held.
     */
    @Test
    void aCheckedExceptionWhilePopulatingFramesTakenAtOnceTakesNothing() {
        aFailureWhilePopulatingFramesTakenAtOnceTakesNothing(new IOException("injected, in the backing's populate"));
    }

    private static void aFailureWhilePopulatingFramesTakenAtOnceTakesNothing(Throwable injected) {
        assumePopulated();
        AtomicBoolean armed = new AtomicBoolean();
        try (FramePool pool = new FramePool((long) FRAMES * PAGE, 4, populateThrowsOnce(armed, injected))) {
            fourWarmTwoColdSixInUse(pool);
            armed.set(true);
            int inUse = pool.framesInUse();
            int available = pool.framesAvailable();
            assertSame(injected, assertThrows(injected.getClass(), () -> pool.allocateForOverwrite(new int[40], 40)));
            assertEquals(inUse, pool.framesInUse(), "frames in use");
            assertEquals(available, pool.framesAvailable(), "nothing reserved");
            assertEveryFreeFrameTakenOnce(pool, 5, 6, 7, 10, 11, 12);
        }
    }

    /**
     * A take undone puts its warm frames back on the warm list only as far as the list has room: frees
     * (or a refill) on other threads may have filled the list the take emptied while it ran. Those beyond
     * the limit go to the cold list, their memory given back as a free's is: taken again, they read as
     * zeros. Here the frees run inside the failing populate, where another thread's would land. Before,
     * every warm frame went back on the warm list: 7 frames on a list of at most 4.
     */
    @Test
    void aTakeUndoneWhileFreesFilledTheWarmListLeavesItWithinItsLimit() {
        assumePopulated();
        AtomicReference<FramePool> freeing = new AtomicReference<>();
        FrameBacking.Factory freesThenThrows = frames -> new ForwardingBacking(frames) {
            @Override
            public void populate(int first, int count) {
                FramePool pool = freeing.getAndSet(null);
                if (pool != null) {
                    pool.freeAll(new int[] {5, 6, 7}, 3);
                    throw new OutOfMemoryError("injected, in the backing's populate");
                }
                super.populate(first, count);
            }
        };
        try (FramePool pool = new FramePool((long) FRAMES * PAGE, 4, freesThenThrows)) {
            fourWarmTwoColdSixInUse(pool);
            for (int frame = 1; frame <= 4; frame++) {
                pool.memory().set(ValueLayout.JAVA_BYTE, FramePool.offsetOf(frame) + 100, (byte) 9);    // old bytes
            }
            int inUse = pool.framesInUse();
            int available = pool.framesAvailable();
            freeing.set(pool);
            assertThrows(OutOfMemoryError.class, () -> pool.allocateForOverwrite(new int[30], 30));
            assertTrue(pool.warmFrames() <= 4, pool.warmFrames() + " frames on a warm list of at most 4");
            assertEquals(inUse - 3, pool.framesInUse(), "frames in use: 5, 6 and 7 were freed");
            assertEquals(available + 3, pool.framesAvailable(), "nothing reserved; 5, 6 and 7 free");
            assertTrue(pool.tryReserve(available + 3));
            int[] taken = new int[available + 3];
            for (int i = 0; i < taken.length; i++) {
                taken[i] = pool.allocateReserved();
                assertEquals(0, pool.memory().get(ValueLayout.JAVA_BYTE, FramePool.offsetOf(taken[i]) + 100),
                        "frame " + taken[i] + " reads as zeros");
            }
            pool.freeAll(taken, taken.length);
            assertEveryFreeFrameTakenOnce(pool, 10, 11, 12);
        }
    }

    /**
     * Anonymous frames whose next release (one frame or many), once armed, throws {@code error} instead,
     * whatever it is, as a backing written in a language without checked exceptions can.
     */
    private static FrameBacking.Factory releaseThrowsOnce(AtomicBoolean armed, Throwable error) {
        return frames -> new ForwardingBacking(frames) {
            @Override
            public void release(int frame) {
                if (armed.getAndSet(false)) {
                    LangUtil.rethrowUnchecked(error);
                }
                super.release(frame);
            }

            @Override
            public void release(int[] batch, int count) {
                if (armed.getAndSet(false)) {
                    LangUtil.rethrowUnchecked(error);
                }
                super.release(batch, count);
            }
        };
    }

    /**
     * An {@link Error} from the backing while a frame is freed is counted, one per frame, and not thrown:
     * the frame is free all the same, and reads as zeros when taken again (zeroed in place, as for a
     * refusal): none is lost. Before, the pool threw it once the frame was free, and uncounted.
     */
    @Test
    void anErrorWhileReleasingFreedFramesStillFreesThem() {
        aFailureWhileReleasingFreedFramesStillFreesThem(new InternalError("injected, in the backing's release"));
    }

    /** The same for a refusal (a failing madvise): before, the pool swallowed it, and nothing counted it. */
    @Test
    void aRefusalWhileReleasingFreedFramesIsCounted() {
        aFailureWhileReleasingFreedFramesStillFreesThem(new IllegalStateException("injected: madvise failed"));
    }

    /**
     * The same for a checked exception the backing throws undeclared: the frees caught only unchecked
     * exceptions and errors, so such a one left the frames off every list, counted in use for ever.
     */
    @Test
    void aCheckedExceptionWhileReleasingFreedFramesStillFreesThem() {
        aFailureWhileReleasingFreedFramesStillFreesThem(new IOException("injected, in the backing's release"));
    }

    private static void aFailureWhileReleasingFreedFramesStillFreesThem(Throwable injected) {
        AtomicBoolean armed = new AtomicBoolean();
        try (FramePool pool = new FramePool((long) FRAMES * PAGE, 0, releaseThrowsOnce(armed, injected))) {
            assertTrue(pool.tryReserve(12));
            for (int i = 0; i < 12; i++) {
                int frame = pool.allocateReserved();
                pool.memory().set(ValueLayout.JAVA_BYTE, FramePool.offsetOf(frame) + 100, (byte) 9);
            }
            armed.set(true);
            pool.free(3);
            assertFalse(armed.get(), "the release of frame 3 was reached");
            armed.set(true);
            pool.freeAll(new int[] {5, 7, 8}, 3);
            assertFalse(armed.get(), "the release of frames 5, 7 and 8 was reached");
            assertEquals(4, pool.releaseFailures(), "frame 3's failed release and the batch's, one per frame");
            assertEquals(8, pool.framesInUse(), "frames in use");
            assertEquals(FRAMES - 1 - 8, pool.framesAvailable());
            for (int frame : new int[] {3, 5, 7, 8}) {
                assertEquals(0, pool.memory().get(ValueLayout.JAVA_BYTE, FramePool.offsetOf(frame) + 100),
                        "frame " + frame + " reads as zeros");
            }
            assertEveryFreeFrameTakenOnce(pool, 1, 2, 4, 6, 9, 10, 11, 12);
        }
    }

    /**
     * A frame released in place (a mapped guest's all-zero page) whose release throws is zeroed in place,
     * still allocated, and the failure counted, not thrown.
     */
    @Test
    void aFailedReleaseInPlaceIsCountedAndZeroesTheFrame() {
        AtomicBoolean armed = new AtomicBoolean();
        InternalError injected = new InternalError("injected, in the backing's release");
        try (FramePool pool = new FramePool((long) FRAMES * PAGE, 0, releaseThrowsOnce(armed, injected))) {
            assertTrue(pool.tryReserve(1));
            int frame = pool.allocateReserved();
            pool.memory().set(ValueLayout.JAVA_BYTE, FramePool.offsetOf(frame) + 100, (byte) 9);
            armed.set(true);
            pool.releaseInPlace(frame);
            assertFalse(armed.get(), "the release was reached");
            assertEquals(1, pool.releaseFailures());
            assertEquals(0, pool.memory().get(ValueLayout.JAVA_BYTE, FramePool.offsetOf(frame) + 100), "reads as zeros");
            assertEquals(1, pool.framesInUse(), "still its mapper's");
        }
    }

    /**
     * Only what the backing's release throws is counted and not thrown. Where zeroing the frame in place
     * then faults too (a file mapping cut short: the JVM turns the SIGBUS into an {@link InternalError}),
     * that fault is not the backing's and passes through; the frame stays off every list, counted in use.
     */
    @Test
    void aFaultZeroingAFrameWhoseReleaseFailedPassesThrough(@TempDir Path dir) throws IOException {
        try (FileChannel file = FileChannel.open(dir.resolve("frames"), StandardOpenOption.CREATE_NEW,
                StandardOpenOption.READ, StandardOpenOption.WRITE);
                FramePool pool = new FramePool((long) FRAMES * PAGE, 0, frames -> new FileFrames(file, frames))) {
            assertTrue(pool.tryReserve(1));
            int frame = pool.allocateReserved();
            file.truncate(PAGE);                // the zero frame still reads; every other frame faults
            InternalError fault = assertThrows(InternalError.class, () -> pool.free(frame));
            assertTrue(fault.getMessage().contains("fault"), fault.getMessage());
            assertEquals(1, pool.releaseFailures(), "the backing's release faulted first");
            assertEquals(1, pool.framesInUse(), "the frame is on no list");
        }
    }

    /**
     * A warm frame taken to be read as zeros is zeroed in place; where its memory faults (a file mapping
     * cut short under it: the JVM turns the SIGBUS into an {@link InternalError}), the take throws and
     * the frame is warm again.
     */
    @Test
    void aFaultWhileZeroingAWarmFrameLeavesThePoolAsItWas(@TempDir Path dir) throws IOException {
        try (FileChannel file = FileChannel.open(dir.resolve("frames"), StandardOpenOption.CREATE_NEW,
                StandardOpenOption.READ, StandardOpenOption.WRITE);
                FramePool pool = new FramePool((long) FRAMES * PAGE, 1, frames -> new FileFrames(file, frames))) {
            assertTrue(pool.tryReserve(1));
            int frame = pool.allocateReserved();
            pool.memory().set(ValueLayout.JAVA_BYTE, FramePool.offsetOf(frame) + 100, (byte) 9);
            pool.free(frame);
            assertEquals(1, pool.warmFrames());
            file.truncate(PAGE);                // the zero frame still reads; every other frame faults
            assertTrue(pool.tryReserve(1));
            InternalError fault = assertThrows(InternalError.class, pool::allocateReserved);
            assertTrue(fault.getMessage().contains("fault"), fault.getMessage());
            assertEquals(0, pool.framesInUse(), "frames in use");
            pool.unreserve(1);                  // what the taker's failure path does
            assertEquals(FRAMES - 1, pool.framesAvailable());
            assertEquals(1, pool.warmFrames(), "the frame is warm again");
        }
    }

    /**
     * A warm frame that an undone take finds no room for on the warm list, and whose memory can be neither
     * given back nor zeroed (a file mapping cut short under it), goes back on the warm list past its limit
     * rather than be lost to the pool; the faults ride on the take's error as suppressed ones.
     */
    @Test
    void aWarmFrameUndoneThatCanBeNeitherReleasedNorZeroedGoesBackWarmPastTheLimit(@TempDir Path dir)
            throws IOException {
        AtomicReference<FramePool> freeing = new AtomicReference<>();
        try (FileChannel file = FileChannel.open(dir.resolve("frames"), StandardOpenOption.CREATE_NEW,
                StandardOpenOption.READ, StandardOpenOption.WRITE);
                FramePool pool = new FramePool((long) FRAMES * PAGE, 2, frames -> new FileFrames(file, frames) {
                    @Override
                    public boolean releasesMemory() {
                        return true;        // so that a take of many frames populates them
                    }

                    @Override
                    public void populate(int first, int count) {
                        FramePool pool = freeing.getAndSet(null);
                        if (pool != null) {
                            pool.free(3);
                            pool.free(4);
                            throw new OutOfMemoryError("injected, in the backing's populate");
                        }
                    }
                })) {
            assertTrue(pool.tryReserve(4));
            for (int i = 0; i < 4; i++) {
                pool.allocateReserved();
            }
            pool.free(1);
            pool.free(2);
            assertEquals(2, pool.warmFrames());
            file.truncate(PAGE);                // the zero frame still reads; every other frame faults
            freeing.set(pool);
            OutOfMemoryError failure = assertThrows(OutOfMemoryError.class,
                    () -> pool.allocateForOverwrite(new int[16], 16));
            assertEquals(2, failure.getSuppressed().length, "the faults giving frames 1 and 2 back");
            for (Throwable fault : failure.getSuppressed()) {
                assertTrue(fault instanceof InternalError, fault.toString());
            }
            assertEquals(4, pool.warmFrames(), "frames 3 and 4 freed warm, 1 and 2 back warm past the limit");
            assertEquals(0, pool.framesInUse(), "frames in use");
            assertEquals(FRAMES - 1, pool.framesAvailable(), "nothing reserved");
            file.write(ByteBuffer.allocate(1), (long) FRAMES * PAGE - 1);     // the frames read again
            assertEveryFreeFrameTakenOnce(pool);
        }
    }

    /** A pool's frames in a mapped file, as a memfd backing holds them; releasing zeroes in place. */
    static class FileFrames implements FrameBacking {

        private final Arena arena = Arena.ofShared();
        private final MemorySegment region;

        FileFrames(FileChannel file, int frames) {
            try {
                file.write(ByteBuffer.allocate(1), (long) frames * PAGE - 1);
                region = file.map(FileChannel.MapMode.READ_WRITE, 0, (long) frames * PAGE, arena);
            } catch (IOException e) {
                throw new IllegalStateException(e);
            }
        }

        @Override
        public MemorySegment region() {
            return region;
        }

        @Override
        public boolean releasesMemory() {
            return false;
        }

        @Override
        public void release(int frame) {
            region.asSlice(FramePool.offsetOf(frame), PAGE).fill((byte) 0);
        }

        @Override
        public void release(int[] frames, int count) {
            for (int i = 0; i < count; i++) {
                release(frames[i]);
            }
        }

        @Override
        public void close() {
            arena.close();
        }
    }
}
