package io.samepage.core;

import io.samepage.linux.NativeMemory;
import io.samepage.hashing.Pages;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicIntegerArray;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class FramePoolTest {

    private static final long MIB = 1L << 20;

    private static FramePool poolOfFrames(int frames) {
        return new FramePool((long) frames * Pages.PAGE_SIZE);
    }

    @Test
    void capacityIsRoundedDownToWholeFramesAndNeedsTwo() {
        try (FramePool pool = new FramePool(3L * Pages.PAGE_SIZE + 100)) {
            assertEquals(3, pool.capacityFrames());
            assertEquals(2, pool.framesAvailable());
            assertEquals(3L * Pages.PAGE_SIZE, pool.memory().byteSize());
        }
        IllegalArgumentException tooSmall =
                assertThrows(IllegalArgumentException.class, () -> new FramePool(2L * Pages.PAGE_SIZE - 1));
        assertTrue(tooSmall.getMessage().contains("at least 2 frames"), tooSmall.getMessage());
        assertThrows(IllegalArgumentException.class, () -> new FramePool(-1));
    }

    @Test
    void reservationCannotOverCommitAndUnreserveGivesFramesBack() {
        try (FramePool pool = poolOfFrames(5)) {
            assertEquals(4, pool.framesAvailable());
            assertTrue(pool.tryReserve(3));
            assertEquals(1, pool.framesAvailable());
            assertFalse(pool.tryReserve(2), "only one unreserved frame is left");
            assertEquals(1, pool.framesAvailable(), "a refused reservation changes nothing");
            assertTrue(pool.tryReserve(0));
            pool.unreserve(2);
            assertEquals(3, pool.framesAvailable());
            assertTrue(pool.tryReserve(3));
            assertEquals(0, pool.framesAvailable());
            assertEquals(0, pool.framesInUse());
            assertThrows(IllegalStateException.class, () -> pool.unreserve(5), "only 4 frames are reserved");
            assertThrows(IllegalArgumentException.class, () -> pool.tryReserve(-1));
            assertThrows(IllegalArgumentException.class, () -> pool.unreserve(-1));
        }
    }

    @Test
    void allocateReservedWithoutReservationIsRefused() {
        try (FramePool pool = poolOfFrames(4)) {
            assertThrows(IllegalStateException.class, pool::allocateReserved);
            assertTrue(pool.tryReserve(1));
            pool.allocateReserved();
            assertThrows(IllegalStateException.class, pool::allocateReserved, "the reservation was used up");
            assertEquals(1, pool.framesInUse());
            assertEquals(2, pool.framesAvailable());
        }
    }

    @Test
    void allocatedFrameStartsWithOneReferenceNoHashAndNoLink() {
        try (FramePool pool = poolOfFrames(4)) {
            assertTrue(pool.tryReserve(1));
            int frame = pool.allocateReserved();
            assertNotEquals(FramePool.ZERO_FRAME, frame);
            assertEquals(1, pool.table().refCount(frame));
            assertEquals(0, pool.table().stableKey(frame));
            assertEquals(-1, pool.table().next(frame));
            assertEquals((long) frame << 12, FramePool.offsetOf(frame));
        }
    }

    @Test
    void freedFramesAreReusedBeforeNeverUsedOnes() {
        try (FramePool pool = poolOfFrames(8)) {
            assertTrue(pool.tryReserve(3));
            int a = pool.allocateReserved();
            int b = pool.allocateReserved();
            int c = pool.allocateReserved();
            assertEquals(3, new HashSet<>(List.of(a, b, c)).size(), "each frame is handed out once");
            pool.table().setStableKey(b, 42);
            pool.table().setNext(b, c);
            pool.free(b);
            assertEquals(2, pool.framesInUse());
            assertEquals(5, pool.framesAvailable());
            assertTrue(pool.tryReserve(1));
            assertEquals(b, pool.allocateReserved(), "the freed frame comes back first");
            assertEquals(0, pool.table().stableKey(b), "a reused frame has no stale key");
            assertEquals(-1, pool.table().next(b), "a reused frame has no stale link");
            assertEquals(1, pool.table().refCount(b));
        }
    }

    @Test
    void freedFrameReadsAsZerosWhenReallocated() {
        try (FramePool pool = poolOfFrames(4)) {
            MemorySegment memory = pool.memory();
            assertTrue(pool.tryReserve(1));
            int frame = pool.allocateReserved();
            long offset = FramePool.offsetOf(frame);
            assertTrue(Pages.isZeroPage(memory, offset), "a never-used frame reads as zeros");
            memory.asSlice(offset, Pages.PAGE_SIZE).fill((byte) 0x5A);
            pool.free(frame);
            assertTrue(pool.tryReserve(1));
            assertEquals(frame, pool.allocateReserved());
            assertTrue(Pages.isZeroPage(memory, offset), "a reused frame reads as zeros");
            assertTrue(Pages.isZeroPage(memory, FramePool.offsetOf(FramePool.ZERO_FRAME)));
        }
    }

    @Test
    void tryIncrementRefNeverRevivesAFrameWithNoReferences() {
        try (FramePool pool = poolOfFrames(4)) {
            assertTrue(pool.tryReserve(1));
            int frame = pool.allocateReserved();
            assertTrue(pool.table().tryIncrementRef(frame));
            assertEquals(2, pool.table().refCount(frame));
            assertEquals(3, pool.table().incrementRef(frame));
            assertEquals(2, pool.table().decrementRef(frame));
            pool.table().setRefCount(frame, 0);
            assertFalse(pool.table().tryIncrementRef(frame), "a frame at refcount 0 is on its way out");
            assertEquals(0, pool.table().refCount(frame));
            pool.free(frame);
            assertFalse(pool.table().tryIncrementRef(frame), "a free frame cannot gain a reference");
        }
    }

    @Test
    void zeroFrameCannotBeFreed() {
        try (FramePool pool = poolOfFrames(4)) {
            IllegalArgumentException refused =
                    assertThrows(IllegalArgumentException.class, () -> pool.free(FramePool.ZERO_FRAME));
            assertTrue(refused.getMessage().contains("zero frame"), refused.getMessage());
            assertThrows(IllegalArgumentException.class, () -> pool.free(4));
            assertThrows(IllegalArgumentException.class, () -> pool.free(-1));
            assertEquals(3, pool.framesAvailable());
        }
    }

    @Test
    void doubleFreeAndFreeOfNeverAllocatedFrameAreRefused() {
        try (FramePool pool = poolOfFrames(4)) {
            assertThrows(IllegalStateException.class, () -> pool.free(2), "frame 2 was never allocated");
            assertTrue(pool.tryReserve(1));
            int frame = pool.allocateReserved();
            pool.free(frame);
            assertThrows(IllegalStateException.class, () -> pool.free(frame));
            assertEquals(3, pool.framesAvailable(), "the refused free changed nothing");
        }
    }

    /** Twelve bytes a frame, beside the pool's fixed objects (EngineMemoryTest compares those with the heap). */
    @Test
    void metadataCostsTwelveBytesPerFrame() {
        try (FramePool pool = poolOfFrames(100_000); FramePool twice = poolOfFrames(200_000)) {
            assertEquals(12L * 100_000, twice.metadataBytes() - pool.metadataBytes(), "metadata of 100,000 frames more");
            assertTrue(pool.metadataBytes() >= 12L * pool.capacityFrames());
        }
    }

    @Test
    void closeIsIdempotentAndMemoryIsUnreachableAfterwards() {
        FramePool pool = poolOfFrames(4);
        MemorySegment memory = pool.memory();
        pool.close();
        pool.close();
        assertThrows(IllegalStateException.class, () -> memory.get(ValueLayout.JAVA_BYTE, 0));
    }

    @Test
    void concurrentAllocateAndFreeConserveFramesAndNeverShareOne() throws Exception {
        int threads = 4;
        int capacity = 257;
        try (FramePool pool = poolOfFrames(capacity);
             ExecutorService executor = Executors.newFixedThreadPool(threads)) {
            AtomicIntegerArray owner = new AtomicIntegerArray(capacity);
            CountDownLatch start = new CountDownLatch(1);
            List<Future<int[]>> results = new ArrayList<>();
            for (int t = 1; t <= threads; t++) {
                int id = t;
                results.add(executor.submit(() -> churn(pool, owner, id, start)));
            }
            start.countDown();
            int held = 0;
            int reserved = 0;
            for (Future<int[]> result : results) {
                int[] heldAndReserved = result.get();
                held += heldAndReserved[0];
                reserved += heldAndReserved[1];
            }
            assertEquals(held, pool.framesInUse());
            assertEquals(capacity - 1, pool.framesInUse() + pool.framesAvailable() + reserved);
            pool.unreserve(reserved);
            for (int frame = 1; frame < capacity; frame++) {
                if (owner.get(frame) != 0) {
                    pool.free(frame);
                }
            }
            assertEquals(0, pool.framesInUse());
            assertEquals(capacity - 1, pool.framesAvailable());
        }
    }

    /** Reserves, takes, writes and frees at random; returns the frames it still holds and still has reserved. */
    private static int[] churn(FramePool pool, AtomicIntegerArray owner, int id, CountDownLatch start)
            throws InterruptedException {
        SplittableRandom random = new SplittableRandom(id);
        MemorySegment memory = pool.memory();
        List<Integer> held = new ArrayList<>();
        int reserved = 0;
        start.await();
        for (int i = 0; i < 20_000; i++) {
            int action = random.nextInt(3);
            if (action == 0) {
                int frames = random.nextInt(1, 9);
                if (pool.tryReserve(frames)) {
                    reserved += frames;
                }
            } else if (action == 1 && reserved > 0) {
                int frame = pool.allocateReserved();
                reserved--;
                assertTrue(owner.compareAndSet(frame, 0, id), () -> "frame " + frame + " handed out twice");
                long offset = FramePool.offsetOf(frame);
                assertEquals(0L, memory.get(ValueLayout.JAVA_LONG, offset), "a taken frame reads as zeros");
                memory.set(ValueLayout.JAVA_LONG, offset, id);
                held.add(frame);
            } else if (!held.isEmpty() && random.nextBoolean()) {
                int frame = held.remove(random.nextInt(held.size()));
                assertEquals(id, memory.get(ValueLayout.JAVA_LONG, FramePool.offsetOf(frame)));
                owner.set(frame, 0);
                pool.free(frame);
            } else if (!held.isEmpty()) {
                int[] batch = new int[random.nextInt(1, held.size() + 1)];
                for (int b = 0; b < batch.length; b++) {
                    batch[b] = held.remove(random.nextInt(held.size()));
                    assertEquals(id, memory.get(ValueLayout.JAVA_LONG, FramePool.offsetOf(batch[b])));
                    owner.set(batch[b], 0);
                }
                pool.freeAll(batch, batch.length);
            }
            if (reserved > 16) {
                pool.unreserve(reserved - 16);
                reserved = 16;
            }
        }
        return new int[] {held.size(), reserved};
    }

    @Test
    void freeingFramesGivesMemoryBackToTheOperatingSystem() throws IOException {
        Assumptions.assumeTrue(NativeMemory.available(), "needs Linux mmap/madvise to observe RSS");
        int frames = (int) (128 * MIB / Pages.PAGE_SIZE);
        int warm = 1024;
        try (FramePool pool = new FramePool(512 * MIB, warm)) {
            MemorySegment memory = pool.memory();
            int[] taken = new int[frames];
            long before = MappingResidency.residentKib(memory);
            assertTrue(pool.tryReserve(frames));
            for (int i = 0; i < frames; i++) {
                taken[i] = pool.allocateReserved();
                memory.set(ValueLayout.JAVA_BYTE, FramePool.offsetOf(taken[i]), (byte) 1);
            }
            long peak = MappingResidency.residentKib(memory);
            for (int frame : taken) {
                pool.free(frame);
            }
            long after = MappingResidency.residentKib(memory);
            System.out.printf("pool Rss: before %d KiB, after touching 128 MiB of frames %d KiB (+%d KiB), "
                    + "after freeing them %d KiB (-%d KiB)%n", before, peak, peak - before, after, peak - after);
            assertTrue(peak - before >= 100 * 1024, () -> "the pool's Rss grew only " + (peak - before) + " KiB");
            assertTrue(peak - after >= 100 * 1024, () -> "the pool's Rss fell only " + (peak - after) + " KiB");
            assertEquals(0, pool.framesInUse());
            assertEquals(warm, pool.warmFrames(), "the first frames freed stay resident for reuse");
        }
    }

    /**
     * The first frame the pool hands out starts a 2 MiB block (one page table), so a guest's pages written
     * in order fill whole blocks, and a block's frames freed together go back to the kernel cheaply.
     */
    @Test
    void theFirstFrameHandedOutStartsATwoMiBBlock() {
        Assumptions.assumeTrue(NativeMemory.available(), "skipped: native memory is not available here");
        for (int attempt = 0; attempt < 4; attempt++) { // each pool is mapped anew
            try (FramePool pool = new FramePool(64 * MIB)) {
                assertTrue(pool.tryReserve(1));
                int first = pool.allocateReserved();
                assertEquals(1, first);
                assertEquals(0, (pool.memory().address() + FramePool.offsetOf(first)) % NativeMemory.BLOCK_BYTES,
                        "frame 1 at " + Long.toHexString(pool.memory().address() + FramePool.offsetOf(first)));
            }
        }
    }

    /**
     * Frames freed together are taken again lowest first, the warm ones then the cold ones, whatever
     * order they were freed in: pages written in order then get frames in address order.
     */
    @Test
    void framesFreedTogetherAreTakenAgainInAddressOrder() {
        Assumptions.assumeTrue(NativeMemory.available(), "the warm list is kept only where frames go back to the OS");
        try (FramePool pool = new FramePool(16L * Pages.PAGE_SIZE, 2)) {
            assertTrue(pool.tryReserve(6));
            int[] taken = new int[6];
            for (int i = 0; i < taken.length; i++) {
                taken[i] = pool.allocateReserved();
            }
            pool.freeAll(new int[] {taken[4], taken[1], taken[5], taken[0], taken[3], taken[2]}, 6);
            assertTrue(pool.tryReserve(6));
            for (int i = 0; i < taken.length; i++) {
                assertEquals(taken[i], pool.allocateReserved(), "allocation " + i);
            }
        }
    }

    /**
     * A run given back untouched is never-used again, counted available, and taken again whole; once a
     * never-used frame was taken after it, giving it back puts its frames on the cold list, free and
     * available, and a run that needs them is made of them again. Before, that second give-back changed
     * nothing, and its caller freed the frames through an array it made then.
     */
    @Test
    void aRunGivenBackUntouchedIsNeverUsedAgainOrFreeOnTheColdList() {
        try (FramePool pool = poolOfFrames(32)) {
            int available = pool.framesAvailable();
            int run = pool.allocateRun(20);
            assertTrue(pool.untakeRun(run, 20));
            assertEquals(available, pool.framesAvailable());
            assertEquals(0, pool.framesInUse());
            assertEquals(run, pool.allocateRun(20), "the same run, never used");
            assertTrue(pool.tryReserve(1));
            int after = pool.allocateReserved();
            assertEquals(run + 20, after, "a never-used frame after the run");
            assertFalse(pool.untakeRun(run, 20), "not never-used again: a frame after it is taken");
            assertEquals(1, pool.framesInUse());
            assertEquals(available - 1, pool.framesAvailable());
            assertEquals(FrameTable.FREE, pool.table().refCount(run + 19), "the run's frames are free");
            assertEquals(run, pool.allocateRun(20), "the same run, off the cold list");
            for (int frame = run; frame < run + 20; frame++) {
                assertEquals(0, pool.memory().get(java.lang.foreign.ValueLayout.JAVA_LONG, FramePool.offsetOf(frame)),
                        "frame " + frame + " reads as zeros");
            }
        }
    }

    /**
     * When the never-used frames are too few, a run is made of frames freed back to the system and the
     * never-used ones after them, never of frames kept warm (they hold old bytes): it reads as zeros,
     * the warm frames stay on their list, and the rest of the cold list is still taken in order.
     */
    @Test
    void aRunIsMadeOfColdFramesAndNeverUsedOnesButNotOfWarmOnes() {
        Assumptions.assumeTrue(NativeMemory.available(), "the warm list is kept only where frames go back to the OS");
        try (FramePool pool = new FramePool(32L * Pages.PAGE_SIZE, 4)) {
            int first = pool.allocateRun(20);
            assertEquals(1, first);
            int[] run = new int[20];
            for (int i = 0; i < 20; i++) {
                run[i] = first + i;
                pool.memory().set(ValueLayout.JAVA_BYTE, FramePool.offsetOf(run[i]) + 7, (byte) 9);
            }
            pool.freeAll(run, 20);              // frames 1..4 kept warm, 5..20 back to the system
            assertEquals(4, pool.warmFrames());
            int again = pool.allocateRun(20);
            assertEquals(5, again, "cold frames 5..20, then never-used 21..24");
            for (int frame = again; frame < again + 20; frame++) {
                assertEquals(0, pool.memory().get(ValueLayout.JAVA_BYTE, FramePool.offsetOf(frame) + 7), "frame " + frame);
                assertEquals(1, pool.table().refCount(frame));
            }
            assertEquals(4, pool.warmFrames(), "the warm frames were not taken");
            assertThrows(IllegalStateException.class, () -> pool.allocateRun(8), "7 never-used frames are left");
            assertTrue(pool.tryReserve(1));
            assertEquals(1, pool.allocateReserved(), "the warm list is as it was, lowest on top");
        }
    }

    @Test
    void freeAllGivesScatteredFramesBackToTheOperatingSystemAndTheyReadAsZeros() throws IOException {
        Assumptions.assumeTrue(NativeMemory.available(), "needs Linux mmap/madvise to observe RSS");
        int frames = (int) (128 * MIB / Pages.PAGE_SIZE);
        try (FramePool pool = new FramePool(512 * MIB, 0)) {
            MemorySegment memory = pool.memory();
            long before = MappingResidency.residentKib(memory);
            assertTrue(pool.tryReserve(frames));
            int[] taken = new int[frames];
            for (int i = 0; i < frames; i++) {
                taken[i] = pool.allocateReserved();
                memory.set(ValueLayout.JAVA_BYTE, FramePool.offsetOf(taken[i]) + 7, (byte) 1);
            }
            long peak = MappingResidency.residentKib(memory);
            // Every other frame, in batches the way the scanner frees them: no two neighbours in a batch.
            int[] batch = new int[512];
            int inBatch = 0;
            for (int i = 0; i < frames; i += 2) {
                batch[inBatch++] = taken[i];
                if (inBatch == batch.length) {
                    pool.freeAll(batch, inBatch);
                    inBatch = 0;
                }
            }
            pool.freeAll(batch, inBatch);
            long after = MappingResidency.residentKib(memory);
            System.out.printf("pool Rss: after touching 128 MiB of frames +%d KiB, after freeAll of every other "
                    + "frame -%d KiB%n", peak - before, peak - after);
            assertTrue(peak - after >= 50 * 1024, () -> "the pool's Rss fell only " + (peak - after) + " KiB");
            assertEquals(frames / 2, pool.framesInUse());
            for (int i = 1; i < frames; i += 2) {
                assertEquals(1, memory.get(ValueLayout.JAVA_BYTE, FramePool.offsetOf(taken[i]) + 7),
                        "a frame that was not freed keeps its bytes");
            }
            assertTrue(pool.tryReserve(frames / 2));
            for (int i = 0; i < frames / 2; i++) {
                int frame = pool.allocateReservedForOverwrite();
                assertEquals(0, memory.get(ValueLayout.JAVA_BYTE, FramePool.offsetOf(frame) + 7),
                        () -> "frame " + frame + " came back without its bytes discarded");
            }
        }
    }

    @Test
    void freeAllRefusesADoubleFreeButFreesTheOtherFrames() {
        try (FramePool pool = poolOfFrames(8)) {
            assertTrue(pool.tryReserve(3));
            int a = pool.allocateReserved();
            int b = pool.allocateReserved();
            int c = pool.allocateReserved();
            pool.free(b);
            assertThrows(IllegalStateException.class, () -> pool.freeAll(new int[] {a, b, c}, 3));
            assertEquals(0, pool.framesInUse(), "a and c were freed, b was already free");
            assertEquals(7, pool.framesAvailable());
            assertThrows(IllegalArgumentException.class, () -> pool.freeAll(new int[] {FramePool.ZERO_FRAME}, 1));
            assertThrows(IllegalArgumentException.class, () -> pool.freeAll(new int[] {8}, 1));
        }
    }

    @Test
    void warmFramesAreReusedFirstAndReadAsZerosUnlessTakenForOverwrite() {
        try (FramePool pool = new FramePool(64 * Pages.PAGE_SIZE, 2)) {
            MemorySegment memory = pool.memory();
            assertTrue(pool.tryReserve(3));
            int a = pool.allocateReserved();
            int b = pool.allocateReserved();
            int c = pool.allocateReserved();
            for (int frame : new int[] {a, b, c}) {
                memory.set(ValueLayout.JAVA_BYTE, FramePool.offsetOf(frame) + 100, (byte) 9);
            }
            pool.free(a);
            pool.free(b);
            pool.free(c);
            assertEquals(2, pool.warmFrames(), "only two stay resident");
            assertTrue(pool.tryReserve(3));
            int dirty = pool.allocateReservedForOverwrite();
            assertEquals(b, dirty, "the last warm frame freed comes back first");
            assertEquals(9, memory.get(ValueLayout.JAVA_BYTE, FramePool.offsetOf(dirty) + 100),
                    "taken for overwrite: not zeroed");
            int zeroed = pool.allocateReserved();
            assertEquals(a, zeroed);
            assertEquals(0, memory.get(ValueLayout.JAVA_BYTE, FramePool.offsetOf(zeroed) + 100));
            int discarded = pool.allocateReserved();
            assertEquals(c, discarded, "then frames that went back to the operating system");
            assertEquals(0, memory.get(ValueLayout.JAVA_BYTE, FramePool.offsetOf(discarded) + 100));
        }
    }
}
