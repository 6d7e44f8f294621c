package io.samepage.image;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import io.samepage.core.DedupEngine;
import io.samepage.core.EngineContext;
import io.samepage.core.EngineInvariants;
import io.samepage.core.Guest;
import io.samepage.hashing.Pages;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.FutureTask;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicBoolean;
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
     * A late fault that surfaces on a worker right after a batch was handed to it, before the worker
     * recorded it, loses no batch. Before, take had removed the batch from the queue and the throwable left
     * it in nobody's hands: nobody completed it, and the load waited for it for ever. Here the seam cuts the
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
}
