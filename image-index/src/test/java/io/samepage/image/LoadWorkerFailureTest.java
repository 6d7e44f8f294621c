package io.samepage.image;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.samepage.core.DedupEngine;
import io.samepage.core.EngineContext;
import io.samepage.core.EngineInvariants;
import io.samepage.core.ForwardingBacking;
import io.samepage.core.FrameBacking;
import io.samepage.core.Guest;
import io.samepage.core.MergeDomain;
import io.samepage.hashing.Pages;
import io.samepage.linux.NativeMemory;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * Something a worker's resolution throws past the blocks of its batch fails the load, and the worker
 * lives on. Before, the {@link Error} ended the worker's thread; with both workers ended, the batches
 * queued behind them never completed, and the loading thread, which waits for every batch in flight
 * before it returns, waited for ever. CI met it as a run that never finished: a fault reading an index
 * file cut short while in use ({@link IndexCorruptionTest}) surfaced on each worker after its last read,
 * outside the block it failed. Here the {@link Error} comes from the workers' seams, outside any block.
 * (A frame pool's release failing while a worker gives back the frames it took ahead, once this test's
 * vehicle, is counted by the pool and not thrown: {@code FramePool}'s "Release failures".)
 *
 * <p>And a fault a worker meets in a batch fails the whole batch: the JVM raises a fault in reading the
 * mapped index only after the read, having gone on with what the read left, so the blocks of the batch
 * before the one it surfaced in may hold a wrong digest or zero flag.
 */
class LoadWorkerFailureTest {

    private static final int PAGE = Pages.PAGE_SIZE;
    private static final int BLOCKS = 16 * LoadBatch.MAX_BLOCKS;

    @TempDir
    Path dir;

    /** Anonymous frames whose release, while {@code armed}, throws the JVM's error for a memory fault. */
    private static FrameBacking.Factory releaseFailsWhile(AtomicBoolean armed) {
        return frames -> new ForwardingBacking(frames) {
            @Override
            public void release(int[] released, int count) {
                if (armed.get()) {
                    throw new InternalError("injected: release failed");
                }
                super.release(released, count);
            }
        };
    }

    /** Anonymous frames whose populate, while {@code armed}, throws the JVM's error for a memory fault. */
    private static FrameBacking.Factory populateFaultsWhile(AtomicBoolean armed) {
        return frames -> new ForwardingBacking(frames) {
            @Override
            public void populate(int first, int count) {
                if (armed.get()) {
                    throw new InternalError("injected: a fault in an unsafe memory access operation");
                }
                super.populate(first, count);
            }
        };
    }

    /**
     * A release that fails while each worker gives back the frames it took ahead, outside its blocks, is
     * counted by the pool and not thrown: the load fails for its blocks alone, and the workers load again.
     */
    @Test
    @Timeout(value = 60, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
    void aReleaseFailureOutsideAWorkersBlocksIsCountedAndTheWorkersLoadAgain() throws IOException {
        Path image = Files.write(dir.resolve("disk.img"), ImageIndexTest.randomBytes(BLOCKS * PAGE, 5));
        AtomicBoolean armed = new AtomicBoolean();
        EngineContext context = new EngineContext().poolBytes(16L << 20).hashSeed(1).warmFrames(0)
                .frameBacking(releaseFailsWhile(armed)).conclude();
        try (ImageIndex index = ImageIndex.build(image);
                DedupEngine engine = DedupEngine.create(context);
                ImageLoader loader = new ImageLoader(index, engine, 2)) {
            // Every block now differs from its digest: each worker stops at its batch's first block and
            // gives back the frames it took ahead for the others, and the release throws.
            Files.write(image, ImageIndexTest.randomBytes(BLOCKS * PAGE, 6));
            Guest guest = engine.createGuest(engine.createDomain("tenant"), "g", (long) BLOCKS * PAGE);
            armed.set(true);
            ImageIndexException failed = assertThrows(ImageIndexException.class, () -> loader.loadAll(guest, 0));
            assertEquals(ImageIndexException.Kind.BLOCK_MISMATCH, failed.kind());
            armed.set(false);
            assertTrue(engine.counters().frameReleaseFailures() > 0, "the failed releases are counted");
            EngineInvariants.assertConsistentWithHasherOf(context, engine, "after the failed load");

            ImageIndexException mismatch = assertThrows(ImageIndexException.class, () -> loader.loadAll(guest, 0),
                    "the workers load again");
            assertEquals(ImageIndexException.Kind.BLOCK_MISMATCH, mismatch.kind());
            assertEquals(image + ": block 0 (byte 0 of the file) does not match its digest in " + index.origin()
                    + "; the image changed since the index was built: rebuild the index (--rebuild)", mismatch.getMessage());
            EngineInvariants.assertConsistentWithHasherOf(context, engine, "after the second load");
        }
    }

    /**
     * A throwable a worker meets outside any batch (a fault the JVM raised late, after the batch whose
     * read met it had completed) fails the next batch of the same load the worker begins, with that
     * throwable, before any of its blocks is resolved, and the worker resolves the batch after it as usual.
     * Here the worker throws before it first looks for a batch, as such a fault does when it surfaces while
     * the worker waits; whether the batch was submitted before or after does not matter, since it throws
     * before it looks. The test starts no load, so the throwable and the batches all belong to none.
     */
    @Test
    @Timeout(value = 60, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)    // a worker that ended never completes a batch
    void aThrowableOutsideAnyBatchFailsTheNextBatchTheWorkerTakesAndTheWorkerGoesOn() throws IOException {
        int blocks = 2 * LoadBatch.MAX_BLOCKS;
        byte[] bytes = ImageIndexTest.randomBytes(blocks * PAGE, 9);
        Path image = Files.write(dir.resolve("disk.img"), bytes);
        InternalError late = new InternalError("injected: a fault in an unsafe memory access operation, raised late");
        LoadWorkers.Seams seams = new LoadWorkers.Seams() {
            private boolean thrown;     // only the one worker runs it

            @Override
            public void beforeNextBatch() {
                if (!thrown) {
                    thrown = true;
                    throw late;
                }
            }
        };
        EngineContext context = new EngineContext().poolBytes(16L << 20).hashSeed(1).conclude();
        try (ImageIndex index = ImageIndex.build(image);
                DedupEngine engine = DedupEngine.create(context);
                LoadWorkers workers = new LoadWorkers(index, engine, 1, seams)) {
            Guest staging = engine.createGuest(engine.createDomain("tenant"), "staging", (long) blocks * PAGE);
            LoadBatch first = new LoadBatch();
            first.reset(0, LoadBatch.MAX_BLOCKS, staging, 0, true, 0, null);
            workers.submit(first);
            first.await();
            assertEquals(LoadBatch.FAILED, first.outcome[0], "the batch after the stray throwable fails");
            assertSame(late, first.failure(), "with that throwable");
            byte[] staged = new byte[LoadBatch.MAX_BLOCKS * PAGE];
            staging.read(0, staged, 0, staged.length);
            assertArrayEquals(new byte[staged.length], staged, "none of its blocks was installed");

            LoadBatch second = new LoadBatch();
            second.reset(LoadBatch.MAX_BLOCKS, LoadBatch.MAX_BLOCKS, staging, (long) LoadBatch.MAX_BLOCKS * PAGE, true, 0, null);
            workers.submit(second);
            second.await();
            assertNull(second.failure(), "the worker goes on");
            for (int i = 0; i < LoadBatch.MAX_BLOCKS; i++) {
                assertEquals(LoadBatch.READ, second.outcome[i], "block " + (LoadBatch.MAX_BLOCKS + i));
            }
            staging.read((long) LoadBatch.MAX_BLOCKS * PAGE, staged, 0, staged.length);
            assertArrayEquals(java.util.Arrays.copyOfRange(bytes, LoadBatch.MAX_BLOCKS * PAGE, blocks * PAGE), staged);
            EngineInvariants.assertConsistentWithHasherOf(context, engine, "after the stray throwable");
        }
    }

    /**
     * A throwable that surfaces on a worker after it finished a batch, outside the resolution and outside
     * the hand-off, fails the next batch (of the same load: here none) and the worker goes on. Before, it escaped the worker's loop (as one
     * surfacing in a catch handler or at the loop's turn did) and ended the thread; the next batch was
     * never taken, and the load waiting for it waited for ever. The seam runs right after each completed
     * batch, where a late fault from that batch's reads surfaces when the JVM next checks for one.
     */
    @Test
    @Timeout(value = 60, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)    // the old worker ends: a batch never completes
    void aThrowableSurfacingAfterAWorkerCompletedABatchFailsTheNextAndTheWorkerGoesOn() throws IOException {
        int blocks = 3 * LoadBatch.MAX_BLOCKS;
        byte[] bytes = ImageIndexTest.randomBytes(blocks * PAGE, 10);
        Path image = Files.write(dir.resolve("disk.img"), bytes);
        InternalError late = new InternalError("injected: a fault in an unsafe memory access operation, raised late");
        AtomicBoolean thrown = new AtomicBoolean();
        LoadWorkers.Seams afterBatch = new LoadWorkers.Seams() {
            @Override
            public void afterBatch() {
                if (!thrown.getAndSet(true)) {
                    throw late;
                }
            }
        };
        EngineContext context = new EngineContext().poolBytes(16L << 20).hashSeed(1).conclude();
        try (ImageIndex index = ImageIndex.build(image);
                DedupEngine engine = DedupEngine.create(context);
                LoadWorkers workers = new LoadWorkers(index, engine, 1, afterBatch)) {
            Guest staging = engine.createGuest(engine.createDomain("tenant"), "staging", (long) blocks * PAGE);
            LoadBatch[] batches = new LoadBatch[3];
            for (int n = 0; n < batches.length; n++) {
                batches[n] = new LoadBatch();
                long first = (long) n * LoadBatch.MAX_BLOCKS;
                batches[n].reset(first, LoadBatch.MAX_BLOCKS, staging, first * PAGE, true, 0, null);
                workers.submit(batches[n]);
                batches[n].await();
            }
            assertNull(batches[0].failure(), "the batch before the throwable is resolved");
            assertEquals(LoadBatch.FAILED, batches[1].outcome[0], "the batch after it fails");
            assertSame(late, batches[1].failure(), "with that throwable");
            assertNull(batches[2].failure(), "the worker goes on");
            byte[] staged = new byte[blocks * PAGE];
            staging.read(0, staged, 0, staged.length);
            for (int n = 0; n < batches.length; n++) {
                int from = n * LoadBatch.MAX_BLOCKS * PAGE;
                int to = from + LoadBatch.MAX_BLOCKS * PAGE;
                assertArrayEquals(n == 1 ? new byte[to - from] : java.util.Arrays.copyOfRange(bytes, from, to),
                        java.util.Arrays.copyOfRange(staged, from, to), "batch " + n + (n == 1 ? " installed nothing" : " installed"));
            }
            EngineInvariants.assertConsistentWithHasherOf(context, engine, "after the late throwable");
        }
    }

    /**
     * A throwable a worker meets outside its batches, after a batch of a load and before that load's end
     * checks, that no batch failed with, fails that load, even when no batch of it is left for that worker
     * to fail with it; and only that load. Before the end checks, it waited for the next batch a worker
     * took: a load that returned meanwhile returned as if all was well. Here the load has two batches; the
     * worker that first has one throws after it, as a late fault from its reads does, and any other worker
     * begins its batch only once that one has kept the throwable: so the throwable is kept before the load
     * ends, whichever worker gets the second batch.
     */
    @Test
    @Timeout(value = 60, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
    void aStrayThrowableFailsTheLoadOfTheBatchBeforeItAndOnlyThatLoad() throws Exception {
        int blocks = 2 * LoadBatch.MAX_BLOCKS;
        byte[] bytes = ImageIndexTest.randomBytes(blocks * PAGE, 11);
        Path image = Files.write(dir.resolve("disk.img"), bytes);
        InternalError late = new InternalError("injected: a fault in an unsafe memory access operation, raised late");
        AtomicReference<Thread> thrower = new AtomicReference<>();
        AtomicBoolean thrown = new AtomicBoolean();
        CountDownLatch kept = new CountDownLatch(1);
        LoadWorkers.Seams seams = new LoadWorkers.Seams() {
            @Override
            public void handedOver() {
                if (!thrower.compareAndSet(null, Thread.currentThread()) && thrower.get() != Thread.currentThread()) {
                    try {
                        assertTrue(kept.await(30, TimeUnit.SECONDS), "the thrower kept it");
                    } catch (InterruptedException e) {
                        Thread.currentThread().interrupt();    // close()'s: the worker must still see it
                        throw new AssertionError(e);
                    }
                }
            }

            @Override
            public void afterBatch() {
                if (thrower.get() == Thread.currentThread() && !thrown.getAndSet(true)) {
                    throw late;
                }
            }

            @Override
            public void beforeNextBatch() {
                if (thrower.get() == Thread.currentThread() && thrown.get()) {
                    kept.countDown();
                }
            }
        };
        EngineContext context = new EngineContext().poolBytes(16L << 20).hashSeed(1).conclude();
        try (ImageIndex index = ImageIndex.build(image);
                DedupEngine engine = DedupEngine.create(context);
                ImageLoader loader = new ImageLoader(index, engine, 2, seams)) {
            Guest guest = engine.createGuest(engine.createDomain("tenant"), "g", (long) blocks * PAGE);
            InternalError failed = assertThrows(InternalError.class, () -> loader.loadAll(guest, 0),
                    "the load of the batch before the stray fails");
            assertSame(late, failed, "with it");

            byte[] loaded = new byte[bytes.length];
            assertEquals(blocks, loader.loadAll(guest, 0).blocks(), "the next load goes well");
            guest.read(0, loaded, 0, loaded.length);
            assertArrayEquals(bytes, loaded);
            Guest fresh = engine.createGuest(engine.createDomain("other"), "fresh", (long) blocks * PAGE);
            assertEquals(blocks, loader.loadAll(fresh, 0).blocksRead(), "and so does one the workers read, every batch");
            fresh.read(0, loaded, 0, loaded.length);
            assertArrayEquals(bytes, loaded);
            EngineInvariants.assertConsistentWithHasherOf(context, engine, "after the stray");
        }
    }

    /**
     * Blocks 0, 64 to 127 are random and the rest zero; 64 to 70 are resident before the load. The
     * workers' first batch reads block 0 alone (too few frames to populate), the second finds 64 to 70
     * resident and then populates frames for 71 on, which faults. Before, the load mapped 64 to 70 and
     * failed at 71; now it maps none of the second batch.
     */
    @Test
    @Timeout(value = 60, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
    void aFaultInAWorkersBatchLoadsNoneOfTheBatch() throws IOException {
        Assumptions.assumeTrue(NativeMemory.available(), "frames are populated only where they go back to the OS");
        byte[] bytes = new byte[3 * LoadBatch.MAX_BLOCKS * PAGE];
        System.arraycopy(ImageIndexTest.randomBytes(PAGE, 7), 0, bytes, 0, PAGE);
        System.arraycopy(ImageIndexTest.randomBytes(LoadBatch.MAX_BLOCKS * PAGE, 8), 0, bytes, LoadBatch.MAX_BLOCKS * PAGE,
                LoadBatch.MAX_BLOCKS * PAGE);
        Path image = Files.write(dir.resolve("disk.img"), bytes);
        AtomicBoolean armed = new AtomicBoolean();
        EngineContext context = new EngineContext().poolBytes(16L << 20).hashSeed(1)
                .frameBacking(populateFaultsWhile(armed)).conclude();
        try (ImageIndex index = ImageIndex.build(image);
                DedupEngine engine = DedupEngine.create(context);
                ImageLoader alone = new ImageLoader(index, engine, 1);
                ImageLoader workers = new ImageLoader(index, engine, 2)) {
            var domain = engine.createDomain("tenant");
            alone.load(engine.createGuest(domain, "seed", 7L * PAGE), 0, LoadBatch.MAX_BLOCKS, 7);
            Guest guest = engine.createGuest(domain, "g", (long) bytes.length);
            armed.set(true);
            InternalError fault = assertThrows(InternalError.class, () -> workers.loadAll(guest, 0));
            assertEquals("injected: a fault in an unsafe memory access operation", fault.getMessage());
            armed.set(false);
            byte[] loaded = new byte[bytes.length];
            guest.read(0, loaded, 0, loaded.length);
            assertArrayEquals(java.util.Arrays.copyOf(bytes, LoadBatch.MAX_BLOCKS * PAGE),
                    java.util.Arrays.copyOf(loaded, LoadBatch.MAX_BLOCKS * PAGE), "the first batch is loaded");
            assertArrayEquals(new byte[7 * PAGE], java.util.Arrays.copyOfRange(loaded, LoadBatch.MAX_BLOCKS * PAGE,
                    (LoadBatch.MAX_BLOCKS + 7) * PAGE), "no block of the faulted batch is loaded, resident ones included");
            EngineInvariants.assertConsistentWithHasherOf(context, engine, "after the fault");
        }
    }
}
