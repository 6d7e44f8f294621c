package io.samepage.image;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import io.samepage.core.DedupEngine;
import io.samepage.core.EngineContext;
import io.samepage.core.EngineInvariants;
import io.samepage.core.Guest;
import io.samepage.core.MergeDomain;
import io.samepage.hashing.Pages;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.FutureTask;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import java.util.concurrent.locks.LockSupport;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * How a load on worker threads ends, whatever surfaces late on the loading thread or on a worker: it
 * returns only once no worker resolves a batch of it, having destroyed its staging guest, and it reports
 * what it met itself rather than leaving it to the next load.
 */
class LoadEndLateFaultTest {

    private static final int PAGE = Pages.PAGE_SIZE;
    /** How long a step that should take milliseconds is waited for before the test says it hangs. */
    private static final long HANG_SECONDS = 30;

    @TempDir
    Path dir;

    private static byte[] read(Guest guest) {
        byte[] bytes = new byte[(int) guest.sizeBytes()];
        guest.read(0, bytes, 0, bytes.length);
        return bytes;
    }

    /** Waits until {@code latch} is released; the worker or loading thread that calls it is held there till then. */
    private static void hold(CountDownLatch latch) {
        try {
            if (!latch.await(HANG_SECONDS, TimeUnit.SECONDS)) {
                throw new AssertionError("the test never let the thread go on");
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();    // close()'s: the worker must still see it
            throw new AssertionError(e);
        }
    }

    /**
     * A late fault that surfaces on the loading thread while it waits for a batch, and again while the
     * load's clean-up waits for the batches still in flight, ends the load only once every worker has
     * finished its batch; the load fails with the first fault, destroys its staging guest, and the next
     * load goes well. Before, the second fault cut the clean-up short: the load returned while workers
     * still held its batches (and installed into its staging guest, which was left), and the next load
     * started its ring afresh over batches a worker might still hold. Here both workers hold their batch
     * at the hand-off until the test sees the load either returned or parked waiting for a batch.
     */
    @Test
    @Timeout(value = 60, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
    void aFaultWhileTheLoadWaitsForItsBatchesEndsItOnlyOnceEveryWorkerFinished() throws Exception {
        int blocks = 3 * LoadBatch.MAX_BLOCKS;
        byte[] bytes = ImageIndexTest.randomBytes(blocks * PAGE, 21);
        Path image = Files.write(dir.resolve("disk.img"), bytes);
        InternalError first = new InternalError("injected: a fault occurred in an unsafe memory access operation");
        InternalError second = new InternalError("injected: the same, again, in the load's clean-up");
        AtomicInteger parks = new AtomicInteger();
        CountDownLatch release = new CountDownLatch(1);
        LoadWorkers.Seams seams = new LoadWorkers.Seams() {
            @Override
            public void beforePark() {
                switch (parks.getAndIncrement()) {
                    case 0 -> throw first;
                    case 1 -> throw second;
                    default -> { }
                }
            }

            @Override
            public void handedOver() {
                hold(release);
            }
        };
        EngineContext context = new EngineContext().poolBytes(16L << 20).hashSeed(1).conclude();
        try (ImageIndex index = ImageIndex.build(image);
                DedupEngine engine = DedupEngine.create(context);
                ImageLoader loader = new ImageLoader(index, engine, 2, seams)) {
            Guest guest = engine.createGuest(engine.createDomain("tenant"), "g", (long) blocks * PAGE);
            FutureTask<InternalError> task = new FutureTask<>(
                    () -> assertThrows(InternalError.class, () -> loader.loadAll(guest, 0)));
            Thread loading = new Thread(task, "loading");
            loading.setDaemon(true);
            loading.start();
            for (long polls = 0; !task.isDone() && !(LockSupport.getBlocker(loading) instanceof LoadBatch); polls++) {
                if (polls > HANG_SECONDS * 1000) {
                    fail("the load neither returned nor waited for a batch in " + HANG_SECONDS + " s");
                }
                Thread.sleep(1);
            }
            boolean returnedEarly = task.isDone();
            release.countDown();
            assertFalse(returnedEarly, "the load returned while workers still held batches it had given");
            InternalError failed = task.get(HANG_SECONDS, TimeUnit.SECONDS);
            assertSame(first, failed, "the load fails with the first fault");
            assertEquals(List.of(second), List.of(failed.getSuppressed()), "the second is kept with it");
            assertEquals(List.of("g"), engine.guests().stream().map(Guest::name).toList(), "no staging guest left");

            assertEquals(blocks, loader.loadAll(guest, 0).blocks(), "the next load goes well");
            assertArrayEquals(bytes, read(guest));
            Guest fresh = engine.createGuest(engine.createDomain("other"), "fresh", (long) blocks * PAGE);
            assertEquals(blocks, loader.loadAll(fresh, 0).blocksRead(), "and so does one the workers read, every batch");
            assertArrayEquals(bytes, read(fresh));
            EngineInvariants.assertConsistentWithHasherOf(context, engine, "after the faults");
        }
    }

    /**
     * Makes the first worker that finishes a batch throw {@code thrown} once the test has called
     * {@link #loadReturned()}, as a late fault from that batch's reads does when it surfaces after the
     * load took its strays; {@link #awaitKept()} returns once that worker looks for its next batch again,
     * having kept it as its stray.
     */
    private static class ThrowAfterTheLoad implements LoadWorkers.Seams {
        private final Throwable thrown;
        private final AtomicReference<Thread> thrower = new AtomicReference<>();
        private final CountDownLatch returned = new CountDownLatch(1);
        private final CountDownLatch kept = new CountDownLatch(1);

        ThrowAfterTheLoad(Throwable thrown) {
            this.thrown = thrown;
        }

        @Override
        public void afterBatch() {
            if (thrower.compareAndSet(null, Thread.currentThread())) {
                hold(returned);
                if (thrown instanceof Error error) {
                    throw error;
                }
                throw (RuntimeException) thrown;
            }
        }

        @Override
        public void beforeNextBatch() {
            if (thrower.get() == Thread.currentThread()) {
                kept.countDown();
            }
        }

        void loadReturned() {
            returned.countDown();
        }

        void awaitKept() throws InterruptedException {
            assertTrue(kept.await(HANG_SECONDS, TimeUnit.SECONDS), "the worker that threw looks for a batch again");
        }
    }

    /**
     * A load that runs out of heap while it builds the error that reports an earlier load's late fault
     * fails with that OutOfMemoryError before it changes anything, and leaves the fault to the load after
     * it, which reports it. Before, the stray was taken from its worker before its error was built, and
     * the OutOfMemoryError lost it: the load after went well, and nobody heard of the fault.
     */
    @Test
    @Timeout(value = 60, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
    void aLoadThatRunsOutOfHeapReportingAnEarlierLoadsLateFaultLeavesItToTheNextLoad() throws Exception {
        int blocks = LoadBatch.MAX_BLOCKS;      // one batch: one worker finishes it
        byte[] bytes = ImageIndexTest.randomBytes(blocks * PAGE, 22);
        Path image = Files.write(dir.resolve("disk.img"), bytes);
        InternalError late = new InternalError("injected: a fault occurred in an unsafe memory access operation");
        OutOfMemoryError full = new OutOfMemoryError("injected: the heap is full");
        AtomicBoolean armed = new AtomicBoolean(true);
        ThrowAfterTheLoad seams = new ThrowAfterTheLoad(late) {
            @Override
            public void reportingStray() {
                if (armed.getAndSet(false)) {
                    throw full;
                }
            }
        };
        EngineContext context = new EngineContext().poolBytes(16L << 20).hashSeed(1).conclude();
        try (ImageIndex index = ImageIndex.build(image);
                DedupEngine engine = DedupEngine.create(context);
                ImageLoader loader = new ImageLoader(index, engine, 2, seams)) {
            MergeDomain tenant = engine.createDomain("tenant");
            Guest first = engine.createGuest(tenant, "first", (long) blocks * PAGE);
            assertEquals(blocks, loader.load(first, 0, 0, blocks).blocksRead());
            seams.loadReturned();
            seams.awaitKept();

            Guest second = engine.createGuest(tenant, "second", (long) blocks * PAGE);
            second.fill(0, second.sizeBytes(), (byte) 0x5a);
            byte[] before = read(second);
            assertSame(full, assertThrows(OutOfMemoryError.class, () -> loader.loadAll(second, 0)),
                    "the load that runs out of heap fails with it");
            assertFalse(armed.get(), "the seam threw");
            assertArrayEquals(before, read(second), "that load changed nothing");

            ImageIndexException earlier = assertThrows(ImageIndexException.class, () -> loader.loadAll(second, 0),
                    "the load after it reports the fault of the load it belongs to");
            assertEquals(ImageIndexException.Kind.IO, earlier.kind());
            assertEquals(index.origin() + ": a worker met a fault in a memory access after the load of guest first's"
                    + " blocks [0, 64) at 0x0 had ended, so that load may have mapped bytes that are not the image's:"
                    + " load those blocks again; this load changed nothing", earlier.getMessage());
            assertSame(late, earlier.getCause());
            assertArrayEquals(before, read(second), "the load that reports it changed nothing");

            assertEquals(blocks, loader.loadAll(second, 0).blocksMapped(), "the load after that goes well");
            assertArrayEquals(bytes, read(second));
            EngineInvariants.assertConsistentWithHasherOf(context, engine, "after the late fault");
        }
    }

    /**
     * A load that fails early (here with BLOCK_MISMATCH) takes the strays of its own workers before it
     * returns, so the next load is not failed for them: a late fault a worker met after a batch of it is
     * reported by that load itself, first, as it would be by a load that went well, since the blocks the
     * load left may not be the image's; the mismatch comes with it, suppressed. Before, the load failed
     * with the mismatch alone and left the fault to the next load, which failed with IO naming it. Here
     * the load has one batch, in which block 10 changed on disk; the worker that resolves it throws after
     * it, and the loading thread waits after giving it until that worker has kept the throwable.
     */
    @Test
    @Timeout(value = 60, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
    void aLoadThatFailsEarlyReportsItsOwnWorkersLateFaultAndTheNextLoadGoesWell() throws Exception {
        int blocks = LoadBatch.MAX_BLOCKS;
        int changed = 10;
        byte[] bytes = ImageIndexTest.randomBytes(blocks * PAGE, 23);
        Path image = Files.write(dir.resolve("disk.img"), bytes);
        Path indexFile = dir.resolve("disk.idx");
        try (ImageIndex built = ImageIndex.build(image)) {
            built.writeTo(indexFile);
        }
        InternalError late = new InternalError("injected: a fault occurred in an unsafe memory access operation");
        AtomicReference<Thread> thrower = new AtomicReference<>();
        CountDownLatch kept = new CountDownLatch(1);
        LoadWorkers.Seams seams = new LoadWorkers.Seams() {
            @Override
            public void afterGive() {
                hold(kept);
            }

            @Override
            public void afterBatch() {
                if (thrower.compareAndSet(null, Thread.currentThread())) {
                    throw late;
                }
            }

            @Override
            public void beforeNextBatch() {
                if (thrower.get() == Thread.currentThread()) {
                    kept.countDown();
                }
            }
        };
        EngineContext context = new EngineContext().poolBytes(16L << 20).hashSeed(1).conclude();
        try (DedupEngine engine = DedupEngine.create(context);
                ImageIndex index = ImageIndex.open(indexFile, image);
                ImageLoader loader = new ImageLoader(index, engine, 2, seams)) {
            FileTime mtime = Files.getLastModifiedTime(image);
            byte[] edited = bytes.clone();
            edited[changed * PAGE + 3] ^= 1;
            Files.write(image, edited);
            Files.setLastModifiedTime(image, mtime);
            Guest guest = engine.createGuest(engine.createDomain("tenant"), "g", (long) blocks * PAGE);
            InternalError failed = assertThrows(InternalError.class, () -> loader.loadAll(guest, 0),
                    "the load reports its worker's late fault");
            assertSame(late, failed);
            assertEquals(1, failed.getSuppressed().length, "with the mismatch");
            ImageIndexException mismatch = (ImageIndexException) failed.getSuppressed()[0];
            assertEquals(ImageIndexException.Kind.BLOCK_MISMATCH, mismatch.kind());
            assertTrue(mismatch.getMessage().startsWith(image + ": block " + changed + " "), mismatch.getMessage());
            assertEquals(List.of("g"), engine.guests().stream().map(Guest::name).toList(), "no staging guest left");

            Guest fresh = engine.createGuest(engine.createDomain("other"), "fresh", (long) changed * PAGE);
            assertEquals(changed, loader.load(fresh, 0, 0, changed).blocksRead(), "the next load goes well");
            assertArrayEquals(java.util.Arrays.copyOf(bytes, changed * PAGE), read(fresh));
            EngineInvariants.assertConsistentWithHasherOf(context, engine, "after the failed load");
        }
    }

    /**
     * A throwable that cuts the load's end short, here the third in a row in {@link BatchRing#drain} (one
     * while it waits for a batch, one in its inner handler, one in its outer handler, where it calls
     * nothing: only a fault the JVM raises late surfaces there, so {@link LateFaultLoader} puts it there),
     * leaves the staging guest to the next load, which waits for the batches the drain left and then
     * destroys it, before it changes anything. Before, the staging guest was kept nowhere: it stayed in
     * the engine, holding frames, until the engine closed. Both workers hold their batch at the hand-off
     * until the load has failed.
     */
    @Test
    @Timeout(value = 60, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
    void aThrowableThatCutsTheLoadsDrainShortLeavesItsStagingGuestToTheNextLoad() throws Throwable {
        LateFaultLoader.run(LoadEndLateFaultTest.class, "drainCutShort", Set.of("BatchRing.drain"), dir);
    }

    /** {@link #aThrowableThatCutsTheLoadsDrainShortLeavesItsStagingGuestToTheNextLoad}, run by a {@link LateFaultLoader}. */
    private void drainCutShort(Path dir) throws Exception {
        int blocks = 3 * LoadBatch.MAX_BLOCKS;
        byte[] bytes = ImageIndexTest.randomBytes(blocks * PAGE, 24);
        Path image = Files.write(dir.resolve("disk.img"), bytes);
        AtomicInteger parks = new AtomicInteger();
        CountDownLatch release = new CountDownLatch(1);
        LoadWorkers.Seams seams = new LoadWorkers.Seams() {
            @Override
            public void beforePark() {
                switch (parks.getAndIncrement()) {
                    case 0 -> throw new InternalError("injected: a fault while the load waits for a batch");
                    case 1 -> throw new InternalError("injected: one while its drain waits for a batch");
                    default -> { }
                }
            }

            @Override
            public void handedOver() {
                hold(release);
            }
        };
        LateFaults.arm("BatchRing.drain handler 1", new InternalError("injected: one in the drain's inner handler"));
        LateFaults.arm("BatchRing.drain handler 2", new InternalError("injected: one in the drain's outer handler"));
        EngineContext context = new EngineContext().poolBytes(16L << 20).hashSeed(1).conclude();
        try (ImageIndex index = ImageIndex.build(image);
                DedupEngine engine = DedupEngine.create(context);
                ImageLoader loader = new ImageLoader(index, engine, 2, seams)) {
            Guest guest = engine.createGuest(engine.createDomain("tenant"), "g", (long) blocks * PAGE);
            try {
                assertThrows(InternalError.class, () -> loader.loadAll(guest, 0));
                assertEquals(Set.of(), LateFaults.armed(), "both handlers of the drain threw");
                assertEquals(1, release.getCount(), "the load returned while the workers still held its batches");
            } finally {
                release.countDown();
            }

            assertEquals(blocks, loader.loadAll(guest, 0).blocks(), "the next load goes well");
            assertArrayEquals(bytes, read(guest));
            assertEquals(List.of("g"), engine.guests().stream().map(Guest::name).toList(),
                    "no staging guest left once the next load has run");
            EngineInvariants.assertConsistentWithHasherOf(context, engine, "after the drain cut short");
        }
    }

    /**
     * A throwable in the load's end, between its catch of its own failure and the throw of that failure
     * (here a StackOverflowError on entering {@link LoadWorkers#takeStray}, after an OutOfMemoryError while
     * the load waited for a batch), does not replace the failure: the load fails with it, the later one
     * suppressed; and if the later one is the very same throwable (the JVM throws its preallocated
     * OutOfMemoryError again), with nothing suppressed, and no IllegalArgumentException for a throwable
     * suppressing itself. Before, the caller saw the StackOverflowError alone: the load's own failure was
     * lost. Workers hold their batches until the load has met its failure; the next load goes well.
     */
    @Test
    @Timeout(value = 60, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
    void aThrowableInTheLoadsEndDoesNotReplaceTheLoadsOwnFailure() throws Throwable {
        LateFaultLoader.run(LoadEndLateFaultTest.class, "failureKept", Set.of("LoadWorkers.takeStray"), dir);
    }

    /** {@link #aThrowableInTheLoadsEndDoesNotReplaceTheLoadsOwnFailure}, run by a {@link LateFaultLoader}. */
    private void failureKept(Path dir) throws Exception {
        int blocks = 3 * LoadBatch.MAX_BLOCKS;
        byte[] bytes = ImageIndexTest.randomBytes(blocks * PAGE, 25);
        Path image = Files.write(dir.resolve("disk.img"), bytes);
        AtomicReference<OutOfMemoryError> full = new AtomicReference<>();
        AtomicReference<CountDownLatch> release = new AtomicReference<>();
        LoadWorkers.Seams seams = new LoadWorkers.Seams() {
            @Override
            public void beforePark() {
                OutOfMemoryError thrown = full.getAndSet(null);
                if (thrown != null) {
                    release.get().countDown();
                    throw thrown;
                }
            }

            @Override
            public void handedOver() {
                CountDownLatch latch = release.get();
                if (latch != null) {
                    hold(latch);
                }
            }
        };
        EngineContext context = new EngineContext().poolBytes(16L << 20).hashSeed(1).conclude();
        try (ImageIndex index = ImageIndex.build(image);
                DedupEngine engine = DedupEngine.create(context);
                ImageLoader loader = new ImageLoader(index, engine, 2, seams)) {
            MergeDomain tenant = engine.createDomain("tenant");
            Guest guest = engine.createGuest(tenant, "g", (long) blocks * PAGE);
            OutOfMemoryError own = new OutOfMemoryError("injected: the heap is full while the load waits for a batch");
            StackOverflowError later = new StackOverflowError("injected: on entering takeStray");
            release.set(new CountDownLatch(1));
            full.set(own);
            LateFaults.arm("LoadWorkers.takeStray", later);
            OutOfMemoryError failed = assertThrows(OutOfMemoryError.class, () -> loader.loadAll(guest, 0),
                    "the load fails with its own failure");
            assertSame(own, failed);
            assertEquals(List.of(later), List.of(failed.getSuppressed()), "the later throwable is suppressed");

            OutOfMemoryError again = new OutOfMemoryError("injected: the heap is full, thrown again at the end");
            release.set(new CountDownLatch(1));
            full.set(again);
            LateFaults.arm("LoadWorkers.takeStray", again);
            assertSame(again, assertThrows(OutOfMemoryError.class, () -> loader.loadAll(guest, 0)),
                    "the load fails with its failure, met twice");
            assertEquals(List.of(), List.of(again.getSuppressed()), "which does not suppress itself");
            assertEquals(Set.of(), LateFaults.armed(), "takeStray threw both times");

            release.set(null);
            Guest fresh = engine.createGuest(engine.createDomain("other"), "fresh", (long) blocks * PAGE);
            assertEquals(blocks, loader.loadAll(fresh, 0).blocksRead(), "the next load goes well");
            assertArrayEquals(bytes, read(fresh));
            assertEquals(Set.of("g", "fresh"), Set.copyOf(engine.guests().stream().map(Guest::name).toList()),
                    "no staging guest left once the next load has run");
            EngineInvariants.assertConsistentWithHasherOf(context, engine, "after the failed loads");
        }
    }
}
