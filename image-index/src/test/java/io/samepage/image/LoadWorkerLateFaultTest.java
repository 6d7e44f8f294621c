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

    /** The fault the JVM raises for a read of a mapped file cut short, as each case injects it. */
    private static InternalError lateFault() {
        return new InternalError("injected: a fault occurred in an unsafe memory access operation");
    }

    /** Seams whose {@link #fire()}, called from the seam a case overrides, throws {@link #late} the first time. */
    private abstract static class FaultOnce implements LoadWorkers.Seams {
        final InternalError late = lateFault();
        private final AtomicBoolean armed = new AtomicBoolean(true);

        void fire() {
            if (armed.getAndSet(false)) {
                throw late;
            }
        }
    }

    /** Writes an image of {@code blocks} random blocks, seeded with {@code seed}, to disk.img; its bytes. */
    private byte[] writeImage(int blocks, long seed) throws IOException {
        byte[] bytes = ImageIndexTest.randomBytes(blocks * PAGE, seed);
        Files.write(dir.resolve("disk.img"), bytes);
        return bytes;
    }

    /**
     * Where to cut an index file of {@code length} bytes, whose blocks' records end it in block order: at the
     * page after the last record a load of the first {@code loaded} of its {@code blocks} blocks reads, so
     * that no read of those faults for real.
     */
    private static long cutAfterTheRecordsRead(long length, int blocks, int loaded) {
        long cut = (length - (long) (blocks - loaded) * IndexFile.RECORD_LENGTH + PAGE - 1) & -PAGE;
        assertTrue(cut < length, "the cut leaves " + cut + " of " + length + " bytes");
        return cut;
    }

    /** Cuts {@code file} short at {@code length} bytes, in place, as a truncation by another process does. */
    private static void cutShort(Path file, long length) {
        try (RandomAccessFile cut = new RandomAccessFile(file.toFile(), "rw")) {
            cut.setLength(length);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /**
     * An engine (a pool of {@code poolMib} MiB, hash seed 1) and a loader with two workers and the test's
     * seams over {@code index}; closing it closes the loader, the engine and the index, in that order.
     */
    private record Rig(EngineContext context, DedupEngine engine, ImageIndex index, ImageLoader loader)
            implements AutoCloseable {

        static Rig over(ImageIndex index, long poolMib, LoadWorkers.Seams seams) {
            EngineContext context = new EngineContext().poolBytes(poolMib << 20).hashSeed(1).conclude();
            DedupEngine engine = null;
            try {
                engine = DedupEngine.create(context);
                return new Rig(context, engine, index, new ImageLoader(index, engine, 2, seams));
            } catch (RuntimeException | Error e) {
                try (ImageIndex _ = index; DedupEngine _ = engine) {     // as a try-with-resources over the three would
                    throw e;
                }
            }
        }

        /** A guest of {@code blocks} blocks, named {@code name}, in a merge domain of its own, {@code domain}. */
        Guest guest(String domain, String name, long blocks) {
            return engine.createGuest(engine.createDomain(domain), name, blocks * PAGE);
        }

        @Override
        public void close() {
            try (ImageIndex _ = index; DedupEngine _ = engine; ImageLoader _ = loader) {
                // closes the loader, the engine, the index, each even if one before it throws
            }
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
        writeImage(blocks, 12);
        Path indexFile = writeIndex();
        long length = Files.size(indexFile);
        long cut = cutAfterTheRecordsRead(length, blocks, loaded);
        AtomicBoolean armed = new AtomicBoolean();
        LoadWorkers.Seams seams = new LoadWorkers.Seams() {
            @Override
            public void handedOver() {
                if (armed.getAndSet(false)) {
                    cutShort(indexFile, cut);
                    throw lateFault();
                }
            }
        };
        try (Rig rig = Rig.over(ImageIndex.open(indexFile, dir.resolve("disk.img")), 64, seams)) {
            // A whole load first, in another domain: the table of duplicates (which reads every record) is
            // made before the cut, and the blocks below are read again, by the workers.
            rig.loader().loadAll(rig.guest("other", "before", blocks), 0);
            Guest guest = rig.guest("tenant", "g", loaded + 2L);
            guest.fill(0, guest.sizeBytes(), (byte) 0x5a);
            armed.set(true);
            ImageIndexException changed = returns(
                    () -> assertThrows(ImageIndexException.class, () -> rig.loader().load(guest, PAGE, 0, loaded)),
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
            EngineInvariants.assertConsistentWithHasherOf(rig.context(), rig.engine(), "after the lost hand-off");
            assertEquals(List.of("before", "g"), guestNames(rig), "no staging guest left");
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
        byte[] bytes = writeImage(2 * LoadBatch.MAX_BLOCKS, 16);
        CountDownLatch release = new CountDownLatch(1);
        FaultOnce seams = new FaultOnce() {
            @Override
            public void afterGive() {
                fire();
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
        try (Rig rig = builtRig(seams)) {
            Guest guest = rig.guest("tenant", "g", bytes.length / PAGE);
            FutureTask<InternalError> task = new FutureTask<>(
                    () -> assertThrows(InternalError.class, () -> rig.loader().loadAll(guest, 0)));
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
            assertSame(seams.late, task.get(HANG_SECONDS, TimeUnit.SECONDS), "the load fails with the fault");
            assertNoStagingGuestAndTheNextLoadGoesWell(rig, guest, bytes, "the next load after the fault");
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
        byte[] bytes = writeImage(2 * LoadBatch.MAX_BLOCKS, 18);
        FaultOnce seams = new FaultOnce() {
            @Override
            public void afterPublish() {
                fire();
            }
        };
        try (Rig rig = builtRig(seams)) {
            List<Thread> workers = Thread.getAllStackTraces().keySet().stream()
                    .filter(t -> t.getName().startsWith(LoadWorkers.THREAD_NAME + "-")).toList();
            for (long polls = 0; !workers.stream().allMatch(t -> LockSupport.getBlocker(t) instanceof LoadWorkers); polls++) {
                if (polls > HANG_SECONDS * 1000) {
                    fail("the workers did not all wait for a batch in " + HANG_SECONDS + " s");
                }
                Thread.sleep(1);
            }
            assertTheLoadFailsWithTheFaultAndTheNextGoesWell(rig, seams, bytes, "the load waits for a batch that was "
                    + "published while every worker was parked, and nobody woke one", "the next load after the fault");
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
        byte[] bytes = writeImage(2 * LoadBatch.MAX_BLOCKS, 19);
        FaultOnce seams = new FaultOnce() {
            @Override
            public void beforePublish() {
                fire();
            }
        };
        try (Rig rig = builtRig(seams)) {
            assertTheLoadFailsWithTheFaultAndTheNextGoesWell(rig, seams, bytes,
                    "the load waits for a batch it opened and never published",
                    "the next load waits for the batch opened and never published");
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

    /** disk.img's index, built and written to disk.idx. */
    private Path writeIndex() {
        Path indexFile = dir.resolve("disk.idx");
        try (ImageIndex built = ImageIndex.build(dir.resolve("disk.img"))) {
            built.writeTo(indexFile);
        }
        return indexFile;
    }

    /** A rig over disk.img's index, built in memory, in a 16 MiB pool. */
    private Rig builtRig(LoadWorkers.Seams seams) {
        return Rig.over(ImageIndex.build(dir.resolve("disk.img")), 16, seams);
    }

    private static List<String> guestNames(Rig rig) {
        return rig.engine().guests().stream().map(Guest::name).toList();
    }

    /**
     * After a load of guest "g" failed with a fault: no staging guest is left, the next load of the whole
     * image into {@code guest} (failing the test, naming {@code hang}, if it does not return) goes well, and
     * the engine is consistent.
     */
    private static void assertNoStagingGuestAndTheNextLoadGoesWell(Rig rig, Guest guest, byte[] bytes, String hang)
            throws Exception {
        assertEquals(List.of("g"), guestNames(rig), "no staging guest left");

        assertEquals(bytes.length / PAGE, returns(() -> rig.loader().loadAll(guest, 0).blocks(), hang),
                "the next load goes well");
        assertArrayEquals(bytes, read(guest));
        EngineInvariants.assertConsistentWithHasherOf(rig.context(), rig.engine(), "after the fault");
    }

    /**
     * Loads the whole image into a new guest "g" with {@code seams} firing on the loading thread: the load
     * fails with their fault (failing the test, naming {@code hang}, if it does not return), and then
     * {@link #assertNoStagingGuestAndTheNextLoadGoesWell} (naming {@code nextHang}).
     */
    private static void assertTheLoadFailsWithTheFaultAndTheNextGoesWell(Rig rig, FaultOnce seams, byte[] bytes,
            String hang, String nextHang) throws Exception {
        Guest guest = rig.guest("tenant", "g", bytes.length / PAGE);
        assertSame(seams.late, returns(() -> assertThrows(InternalError.class, () -> rig.loader().loadAll(guest, 0)),
                hang), "the load fails with the fault");
        assertNoStagingGuestAndTheNextLoadGoesWell(rig, guest, bytes, nextHang);
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
        byte[] bytes = writeImage(blocks, 13);
        InternalError late = lateFault();
        ThrowAfterTheLoad seams = new ThrowAfterTheLoad(late);
        try (Rig rig = builtRig(seams)) {
            ImageIndex index = rig.index();
            ImageLoader loader = rig.loader();
            MergeDomain tenant = rig.engine().createDomain("tenant");
            Guest first = rig.engine().createGuest(tenant, "first", (long) blocks * PAGE);
            assertEquals(blocks, loader.load(first, 0, 0, blocks).blocksRead());
            seams.loadReturned();
            seams.awaitKept();

            Guest second = rig.engine().createGuest(tenant, "second", (long) blocks * PAGE);
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
            EngineInvariants.assertConsistentWithHasherOf(rig.context(), rig.engine(), "after the late fault");
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
        byte[] bytes = writeImage(blocks, 14);
        ThrowAfterTheLoad seams = new ThrowAfterTheLoad(new StackOverflowError("injected"));
        try (Rig rig = builtRig(seams)) {
            ImageLoader loader = rig.loader();
            MergeDomain tenant = rig.engine().createDomain("tenant");
            assertEquals(blocks, loader.loadAll(rig.engine().createGuest(tenant, "first", (long) blocks * PAGE), 0).blocksRead());
            seams.loadReturned();
            seams.awaitKept();

            Guest second = rig.engine().createGuest(tenant, "second", (long) blocks * PAGE);
            assertEquals(blocks, loader.loadAll(second, 0).blocksMapped(), "the next load goes well");
            assertArrayEquals(bytes, read(second));
            Guest fresh = rig.guest("other", "fresh", blocks);
            assertEquals(blocks, loader.loadAll(fresh, 0).blocksRead(), "and so does one the workers read");
            assertArrayEquals(bytes, read(fresh));
            EngineInvariants.assertConsistentWithHasherOf(rig.context(), rig.engine(), "after the stray");
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
        byte[] bytes = writeImage(blocks, 15);
        Path indexFile = writeIndex();
        byte[] whole = Files.readAllBytes(indexFile);
        long cut = cutAfterTheRecordsRead(whole.length, blocks, loaded);
        AtomicBoolean armed = new AtomicBoolean(true);
        ThrowAfterTheLoad seams = new ThrowAfterTheLoad(lateFault()) {
            @Override
            public void handedOver() {
                if (armed.getAndSet(false)) {
                    cutShort(indexFile, cut);
                }
            }
        };
        try (Rig rig = Rig.over(ImageIndex.open(indexFile, dir.resolve("disk.img")), 64, seams)) {
            ImageLoader loader = rig.loader();
            Guest first = rig.guest("tenant", "first", loaded);
            ImageIndexException cutShort = assertThrows(ImageIndexException.class, () -> loader.load(first, 0, 0, loaded));
            assertEquals(ImageIndexException.Kind.CORRUPT, cutShort.kind());
            seams.loadReturned();
            seams.awaitKept();
            try (RandomAccessFile file = new RandomAccessFile(indexFile.toFile(), "rw")) {
                file.write(whole);
            }

            Guest second = rig.guest("other", "second", loaded);
            assertEquals(loaded, loader.load(second, 0, 0, loaded).blocksRead(), "the next load goes well");
            assertArrayEquals(java.util.Arrays.copyOf(bytes, loaded * PAGE), read(second));
            EngineInvariants.assertConsistentWithHasherOf(rig.context(), rig.engine(), "after the late fault");
        }
    }
}
