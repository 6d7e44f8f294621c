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
import java.io.IOException;
import java.io.RandomAccessFile;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.FutureTask;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicReference;
import java.util.concurrent.locks.LockSupport;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * A fault the JVM raises late (the InternalError for a read of a mapped file cut short, raised at the
 * thread's next check after the read) can surface anywhere in a load worker's loop. Wherever it does,
 * no batch is lost, and the load it belongs to is the one that reports it.
 */
class LoadWorkerLateFaultTest {

    private static final int PAGE = Pages.PAGE_SIZE;
    /** How long a load that should return within milliseconds is waited for before the test says it hangs. */
    private static final long HANG_SECONDS = 30;

    @TempDir
    Path dir;

    /**
     * What {@code call} returns, called on a thread of its own; fails the test, naming {@code hang}, if it
     * has not returned after {@value #HANG_SECONDS} seconds. The thread is a daemon: one that hangs is left.
     */
    private static <T> T returns(Callable<T> call, String hang) throws Exception {
        FutureTask<T> task = new FutureTask<>(call);
        Thread thread = new Thread(task, "loading");
        thread.setDaemon(true);
        thread.start();
        try {
            return task.get(HANG_SECONDS, TimeUnit.SECONDS);
        } catch (TimeoutException e) {
            return fail("no return after " + HANG_SECONDS + " s: " + hang);
        } catch (ExecutionException e) {
            if (e.getCause() instanceof Error error) {
                throw error;
            }
            throw (Exception) e.getCause();
        }
    }

    /**
     * A late fault that surfaces on a worker right after it claimed a batch, before it stored anything of
     * it, loses no batch: the claim itself says the worker holds it. Before, take had removed the batch from
     * the queue and the throwable left it in nobody's hands: nobody completed it, and the load waited for it
     * for ever; so would a claim the worker recorded as its own only after it. Here the seam cuts the
     * index file short (after the records the load reads, so that no read faults for real) and throws the
     * JVM's error, as a read past the new end would; the load fails with CORRUPT, its range reading zeros.
     */
    @Test
    @Timeout(value = 60, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
    void aFaultSurfacingBetweenTheHandOffAndTheWorkersRecordOfItLosesNoBatch() throws Exception {
        int blocks = 400;
        int loaded = 3 * LoadBatch.MAX_BLOCKS;
        Path image = Files.write(dir.resolve("disk.img"), ImageIndexTest.randomBytes(blocks * PAGE, 12));
        Path indexFile = dir.resolve("disk.idx");
        long length;
        try (ImageIndex built = ImageIndex.build(image)) {
            built.writeTo(indexFile);
            length = built.sizeBytes();
        }
        // The file ends with the blocks' records, in block order: cut it at the page after the last record
        // the load reads.
        long cut = (length - (long) (blocks - loaded) * IndexFile.RECORD_LENGTH + PAGE - 1) & -PAGE;
        assertTrue(cut < length, "the cut leaves " + cut + " of " + length + " bytes");
        AtomicBoolean armed = new AtomicBoolean();
        LoadWorkers.Seams seams = new LoadWorkers.Seams() {
            @Override
            public void handedOver() {
                if (armed.getAndSet(false)) {
                    try (RandomAccessFile file = new RandomAccessFile(indexFile.toFile(), "rw")) {
                        file.setLength(cut);
                    } catch (IOException e) {
                        throw new UncheckedIOException(e);
                    }
                    throw new InternalError("injected: a fault occurred in an unsafe memory access operation");
                }
            }
        };
        EngineContext context = new EngineContext().poolBytes(64L << 20).hashSeed(1).conclude();
        try (DedupEngine engine = DedupEngine.create(context);
                ImageIndex index = ImageIndex.open(indexFile, image);
                ImageLoader loader = new ImageLoader(index, engine, 2, seams)) {
            // A whole load first, in another domain: the table of duplicates (which reads every record) is
            // made before the cut, and the blocks below are read again, by the workers.
            loader.loadAll(engine.createGuest(engine.createDomain("other"), "before", (long) blocks * PAGE), 0);
            Guest guest = engine.createGuest(engine.createDomain("tenant"), "g", (loaded + 2L) * PAGE);
            guest.fill(0, guest.sizeBytes(), (byte) 0x5a);
            armed.set(true);
            ImageIndexException changed = returns(
                    () -> assertThrows(ImageIndexException.class, () -> loader.load(guest, PAGE, 0, loaded)),
                    "the load waits for the batch handed to the worker that threw, which nobody completes");
            assertFalse(armed.get(), "the seam threw");
            assertEquals(ImageIndexException.Kind.CORRUPT, changed.kind());
            assertEquals(indexFile + ": the index file changed while in use: it is now " + cut + " bytes, " + length
                    + " when it was opened; rebuild the index (--rebuild)", changed.getMessage());
            byte[] pattern = new byte[PAGE];
            java.util.Arrays.fill(pattern, (byte) 0x5a);
            byte[] page = new byte[PAGE];
            for (int p = 0; p < loaded + 2; p++) {
                guest.read((long) p * PAGE, page, 0, PAGE);
                boolean inRange = p >= 1 && p <= loaded;
                assertArrayEquals(inRange ? new byte[PAGE] : pattern, page,
                        "page " + p + (inRange ? " of the range reads zeros" : " outside the range is kept"));
            }
            EngineInvariants.assertConsistentWithHasherOf(context, engine, "after the lost hand-off");
            assertEquals(List.of("before", "g"), engine.guests().stream().map(Guest::name).toList(),
                    "no staging guest left");
        }
    }
    /**
     * A late fault that surfaces on the loading thread right after it gave a batch to a worker (one from
     * its own reads of the index, as it maps zero and resident blocks) ends the load only once the worker
     * has finished that batch. Before, the batch was counted in flight only after submit returned: the
     * load's end neither cancelled nor waited for it, destroyed the staging guest the worker installs into,
     * and left the batch to the next load to reset while the worker still wrote its outcomes. Here every
     * worker waits at the hand-off until the test sees the load either returned or waiting for a batch.
     */
    @Test
    @Timeout(value = 60, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
    void aFaultOnTheLoadingThreadRightAfterAHandOffEndsTheLoadOnlyOnceTheWorkerFinishedTheBatch() throws Exception {
        int blocks = 2 * LoadBatch.MAX_BLOCKS;
        byte[] bytes = ImageIndexTest.randomBytes(blocks * PAGE, 16);
        Path image = Files.write(dir.resolve("disk.img"), bytes);
        InternalError late = new InternalError("injected: a fault occurred in an unsafe memory access operation");
        AtomicBoolean armed = new AtomicBoolean(true);
        CountDownLatch release = new CountDownLatch(1);
        LoadWorkers.Seams seams = new LoadWorkers.Seams() {
            @Override
            public void afterGive() {
                if (armed.getAndSet(false)) {
                    throw late;
                }
            }

            @Override
            public void handedOver() {
                try {
                    if (!release.await(HANG_SECONDS, TimeUnit.SECONDS)) {
                        throw new AssertionError("the test never let the worker go on");
                    }
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();    // close()'s: the worker must still see it
                    throw new AssertionError(e);
                }
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
            assertFalse(returnedEarly, "the load returned while a worker still held the batch it had given");
            assertSame(late, task.get(HANG_SECONDS, TimeUnit.SECONDS), "the load fails with the fault");
            assertEquals(List.of("g"), engine.guests().stream().map(Guest::name).toList(), "no staging guest left");

            assertEquals(blocks, loader.loadAll(guest, 0).blocks(), "the next load goes well");
            assertArrayEquals(bytes, read(guest));
            EngineInvariants.assertConsistentWithHasherOf(context, engine, "after the fault");
        }
    }

    /**
     * A late fault that surfaces on the loading thread right after it published a batch, before it woke a
     * worker, while every worker is parked for want of a batch, ends the load once a worker has finished
     * that batch: the load, waiting for it, wakes a worker itself. Before, nobody woke a worker, no worker
     * claimed the batch, and the load waited for it for ever.
     */
    @Test
    @Timeout(value = 60, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
    void aFaultOnTheLoadingThreadBetweenPublishingABatchAndWakingAWorkerEndsTheLoad() throws Exception {
        int blocks = 2 * LoadBatch.MAX_BLOCKS;
        byte[] bytes = ImageIndexTest.randomBytes(blocks * PAGE, 18);
        Path image = Files.write(dir.resolve("disk.img"), bytes);
        InternalError late = new InternalError("injected: a fault occurred in an unsafe memory access operation");
        AtomicBoolean armed = new AtomicBoolean(true);
        LoadWorkers.Seams seams = new LoadWorkers.Seams() {
            @Override
            public void afterPublish() {
                if (armed.getAndSet(false)) {
                    throw late;
                }
            }
        };
        EngineContext context = new EngineContext().poolBytes(16L << 20).hashSeed(1).conclude();
        try (ImageIndex index = ImageIndex.build(image);
                DedupEngine engine = DedupEngine.create(context);
                ImageLoader loader = new ImageLoader(index, engine, 2, seams)) {
            Guest guest = engine.createGuest(engine.createDomain("tenant"), "g", (long) blocks * PAGE);
            List<Thread> workers = Thread.getAllStackTraces().keySet().stream()
                    .filter(t -> t.getName().startsWith(LoadWorkers.THREAD_NAME + "-")).toList();
            for (long polls = 0; !workers.stream().allMatch(t -> LockSupport.getBlocker(t) instanceof LoadWorkers); polls++) {
                if (polls > HANG_SECONDS * 1000) {
                    fail("the workers did not all wait for a batch in " + HANG_SECONDS + " s");
                }
                Thread.sleep(1);
            }
            assertSame(late, returns(() -> assertThrows(InternalError.class, () -> loader.loadAll(guest, 0)),
                    "the load waits for a batch that was published while every worker was parked, and nobody"
                            + " woke one"), "the load fails with the fault");
            assertEquals(List.of("g"), engine.guests().stream().map(Guest::name).toList(), "no staging guest left");

            assertEquals(blocks, loader.loadAll(guest, 0).blocks(), "the next load goes well");
            assertArrayEquals(bytes, read(guest));
            EngineInvariants.assertConsistentWithHasherOf(context, engine, "after the fault");
        }
    }

    /**
     * A late fault that surfaces on the loading thread right after it opened a batch, before it published
     * it, ends the load at once (no worker can claim a batch it does not know is given) and leaves the
     * batch finished, so that the next load gives it again and goes well.
     */
    @Test
    @Timeout(value = 60, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
    void aFaultOnTheLoadingThreadBetweenOpeningABatchAndPublishingItLeavesTheNextLoadWhole() throws Exception {
        int blocks = 2 * LoadBatch.MAX_BLOCKS;
        byte[] bytes = ImageIndexTest.randomBytes(blocks * PAGE, 19);
        Path image = Files.write(dir.resolve("disk.img"), bytes);
        InternalError late = new InternalError("injected: a fault occurred in an unsafe memory access operation");
        AtomicBoolean armed = new AtomicBoolean(true);
        LoadWorkers.Seams seams = new LoadWorkers.Seams() {
            @Override
            public void beforePublish() {
                if (armed.getAndSet(false)) {
                    throw late;
                }
            }
        };
        EngineContext context = new EngineContext().poolBytes(16L << 20).hashSeed(1).conclude();
        try (ImageIndex index = ImageIndex.build(image);
                DedupEngine engine = DedupEngine.create(context);
                ImageLoader loader = new ImageLoader(index, engine, 2, seams)) {
            Guest guest = engine.createGuest(engine.createDomain("tenant"), "g", (long) blocks * PAGE);
            assertSame(late, returns(() -> assertThrows(InternalError.class, () -> loader.loadAll(guest, 0)),
                    "the load waits for a batch it opened and never published"), "the load fails with the fault");
            assertEquals(List.of("g"), engine.guests().stream().map(Guest::name).toList(), "no staging guest left");

            assertEquals(blocks, returns(() -> loader.loadAll(guest, 0).blocks(),
                    "the next load waits for the batch opened and never published"), "the next load goes well");
            assertArrayEquals(bytes, read(guest));
            EngineInvariants.assertConsistentWithHasherOf(context, engine, "after the fault");
        }
    }

    /**
     * Makes the first worker that finishes a batch throw {@code thrown} once the test has called
     * {@link #loadReturned()}, as a late fault from that batch's reads does when it surfaces after the
     * load's end checks; {@link #awaitKept()} returns once that worker looks for its next batch again,
     * having dealt with it.
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
            if (!thrower.compareAndSet(null, Thread.currentThread())) {
                return;
            }
            try {
                if (!returned.await(HANG_SECONDS, TimeUnit.SECONDS)) {
                    throw new AssertionError("the load never returned");
                }
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();    // close()'s: the worker must still see it
                throw new AssertionError(e);
            }
            if (thrown instanceof Error error) {
                throw error;
            }
            throw (RuntimeException) thrown;
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

    private static byte[] read(Guest guest) {
        byte[] bytes = new byte[(int) guest.sizeBytes()];
        guest.read(0, bytes, 0, bytes.length);
        return bytes;
    }

    /**
     * A late fault that surfaces on a worker after its load's end checks belongs to that load, which has
     * returned as if all was well: the next load, which did nothing wrong, fails before it changes anything,
     * with IO naming the load the fault belongs to, so that its caller can load those blocks again; and the
     * load after goes well. Before, the next load failed with the fault as its own: the InternalError itself
     * here (its index not being cut short), and with an index file cut short, CORRUPT with its whole range
     * emptied.
     */
    @Test
    @Timeout(value = 60, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
    void aLateFaultAfterItsLoadEndedFailsTheNextLoadBeforeItChangesAnythingNamingItsOwnLoad() throws Exception {
        int blocks = LoadBatch.MAX_BLOCKS;      // one batch: one worker finishes it
        byte[] bytes = ImageIndexTest.randomBytes(blocks * PAGE, 13);
        Path image = Files.write(dir.resolve("disk.img"), bytes);
        InternalError late = new InternalError("injected: a fault occurred in an unsafe memory access operation");
        ThrowAfterTheLoad seams = new ThrowAfterTheLoad(late);
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
            ImageIndexException earlier = assertThrows(ImageIndexException.class, () -> loader.loadAll(second, 0),
                    "the next load reports the fault of the load it belongs to");
            assertEquals(ImageIndexException.Kind.IO, earlier.kind());
            assertEquals(index.origin() + ": a worker met a fault in a memory access after the load of guest first's"
                    + " blocks [0, 64) at 0x0 had ended, so that load may have mapped bytes that are not the image's:"
                    + " load those blocks again; this load changed nothing", earlier.getMessage());
            assertSame(late, earlier.getCause());
            assertArrayEquals(before, read(second), "the load that reports it changed nothing");

            assertEquals(blocks, loader.loadAll(second, 0).blocksMapped(), "the load after it goes well");
            assertArrayEquals(bytes, read(second));
            EngineInvariants.assertConsistentWithHasherOf(context, engine, "after the late fault");
        }
    }

    /**
     * A throwable that no late read explains (a StackOverflowError here), met by a worker holding no batch
     * after its load's end checks, fails no later load: it was thrown by the worker's own code between
     * batches, no page depends on it, and the worker went on. Before, the next load failed with it.
     */
    @Test
    @Timeout(value = 60, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
    void aThrowableNoLateReadExplainsFailsNoLaterLoad() throws Exception {
        int blocks = LoadBatch.MAX_BLOCKS;
        byte[] bytes = ImageIndexTest.randomBytes(blocks * PAGE, 14);
        Path image = Files.write(dir.resolve("disk.img"), bytes);
        ThrowAfterTheLoad seams = new ThrowAfterTheLoad(new StackOverflowError("injected"));
        EngineContext context = new EngineContext().poolBytes(16L << 20).hashSeed(1).conclude();
        try (ImageIndex index = ImageIndex.build(image);
                DedupEngine engine = DedupEngine.create(context);
                ImageLoader loader = new ImageLoader(index, engine, 2, seams)) {
            MergeDomain tenant = engine.createDomain("tenant");
            assertEquals(blocks, loader.loadAll(engine.createGuest(tenant, "first", (long) blocks * PAGE), 0).blocksRead());
            seams.loadReturned();
            seams.awaitKept();

            Guest second = engine.createGuest(tenant, "second", (long) blocks * PAGE);
            assertEquals(blocks, loader.loadAll(second, 0).blocksMapped(), "the next load goes well");
            assertArrayEquals(bytes, read(second));
            Guest fresh = engine.createGuest(engine.createDomain("other"), "fresh", (long) blocks * PAGE);
            assertEquals(blocks, loader.loadAll(fresh, 0).blocksRead(), "and so does one the workers read");
            assertArrayEquals(bytes, read(fresh));
            EngineInvariants.assertConsistentWithHasherOf(context, engine, "after the stray");
        }
    }

    /**
     * A late fault of a load that failed with CORRUPT, whose range therefore reads zeros and whose caller
     * was told to load it again, fails no later load: there is nothing left of that load for it to have
     * spoilt. Here the index file is cut short while the load reads (after the records it reads), so the
     * load ends with CORRUPT, then the fault surfaces, then the file is written back whole in place (as a
     * copy over it does); the next load reads the blocks again and goes well. Before, it failed with the
     * fault, which its index, whole again, did not explain: the InternalError as it is.
     */
    @Test
    @Timeout(value = 60, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
    void aLateFaultOfALoadThatFailedCorruptFailsNoLaterLoad() throws Exception {
        int blocks = 400;
        int loaded = LoadBatch.MAX_BLOCKS;
        byte[] bytes = ImageIndexTest.randomBytes(blocks * PAGE, 15);
        Path image = Files.write(dir.resolve("disk.img"), bytes);
        Path indexFile = dir.resolve("disk.idx");
        try (ImageIndex built = ImageIndex.build(image)) {
            built.writeTo(indexFile);
        }
        byte[] whole = Files.readAllBytes(indexFile);
        long cut = (whole.length - (long) (blocks - loaded) * IndexFile.RECORD_LENGTH + PAGE - 1) & -PAGE;
        assertTrue(cut < whole.length, "the cut leaves " + cut + " of " + whole.length + " bytes");
        AtomicBoolean armed = new AtomicBoolean(true);
        ThrowAfterTheLoad seams = new ThrowAfterTheLoad(
                new InternalError("injected: a fault occurred in an unsafe memory access operation")) {
            @Override
            public void handedOver() {
                if (armed.getAndSet(false)) {
                    try (RandomAccessFile file = new RandomAccessFile(indexFile.toFile(), "rw")) {
                        file.setLength(cut);
                    } catch (IOException e) {
                        throw new UncheckedIOException(e);
                    }
                }
            }
        };
        EngineContext context = new EngineContext().poolBytes(64L << 20).hashSeed(1).conclude();
        try (DedupEngine engine = DedupEngine.create(context);
                ImageIndex index = ImageIndex.open(indexFile, image);
                ImageLoader loader = new ImageLoader(index, engine, 2, seams)) {
            Guest first = engine.createGuest(engine.createDomain("tenant"), "first", (long) loaded * PAGE);
            ImageIndexException cutShort = assertThrows(ImageIndexException.class, () -> loader.load(first, 0, 0, loaded));
            assertEquals(ImageIndexException.Kind.CORRUPT, cutShort.kind());
            seams.loadReturned();
            seams.awaitKept();
            try (RandomAccessFile file = new RandomAccessFile(indexFile.toFile(), "rw")) {
                file.write(whole);
            }

            Guest second = engine.createGuest(engine.createDomain("other"), "second", (long) loaded * PAGE);
            assertEquals(loaded, loader.load(second, 0, 0, loaded).blocksRead(), "the next load goes well");
            assertArrayEquals(java.util.Arrays.copyOf(bytes, loaded * PAGE), read(second));
            EngineInvariants.assertConsistentWithHasherOf(context, engine, "after the late fault");
        }
    }
}
