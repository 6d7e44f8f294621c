package io.samepage.image;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import io.samepage.core.DedupEngine;
import io.samepage.core.EngineContext;
import io.samepage.core.Guest;
import io.samepage.hashing.Pages;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.FutureTask;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/** How the loading thread's batches reach the load workers. */
class LoadWorkerHandoffTest {

    private static final int PAGE = Pages.PAGE_SIZE;
    private static final long WAIT_SECONDS = 30;

    @TempDir
    Path dir;

    /**
     * A batch given while every worker is busy goes to the first worker that is done, not to one chosen
     * when it was given: a worker held up (descheduled, or here stopped at a seam) holds up no batch but
     * its own. Here worker A stops on batch 0 and worker B on batch 1; batch 2 is given; B is let go, and
     * batches 1 and 2 must both be finished while A is still stopped. Before, each worker had a hand-off
     * of its own and batch 2 went into A's, where it waited for A.
     */
    @Test
    @Timeout(value = 60, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
    void aBatchGivenWhileAWorkerIsHeldUpIsResolvedByAnotherWorker() throws Exception {
        int blocks = 3 * LoadBatch.MAX_BLOCKS;
        Path image = Files.write(dir.resolve("disk.img"), ImageIndexTest.randomBytes(blocks * PAGE, 17));
        AtomicInteger claims = new AtomicInteger();
        CountDownLatch[] entered = {new CountDownLatch(1), new CountDownLatch(1)};
        CountDownLatch[] release = {new CountDownLatch(1), new CountDownLatch(1)};
        LoadWorkers.Seams seams = new LoadWorkers.Seams() {
            @Override
            public void handedOver() {
                int n = claims.getAndIncrement();
                if (n < 2) {
                    entered[n].countDown();
                    try {
                        if (!release[n].await(WAIT_SECONDS, TimeUnit.SECONDS)) {
                            throw new AssertionError("the test never let worker " + n + " go on");
                        }
                    } catch (InterruptedException e) {
                        Thread.currentThread().interrupt();    // close()'s: the worker must still see it
                        throw new AssertionError(e);
                    }
                }
            }
        };
        EngineContext context = new EngineContext().poolBytes(16L << 20).hashSeed(1).conclude();
        try (ImageIndex index = ImageIndex.build(image);
                DedupEngine engine = DedupEngine.create(context);
                LoadWorkers workers = new LoadWorkers(index, engine, 2, seams)) {
            Guest staging = engine.createGuest(engine.createDomain("tenant"), "staging", (long) blocks * PAGE);
            LoadBatch[] batches = new LoadBatch[3];
            for (int n = 0; n < batches.length; n++) {
                batches[n] = new LoadBatch();
                long first = (long) n * LoadBatch.MAX_BLOCKS;
                batches[n].reset(first, LoadBatch.MAX_BLOCKS, staging, first * PAGE, true, 0, null);
            }
            // The loading thread: it gives every batch and waits for them, so it is the one the workers wake;
            // it lets worker A go on only once batches 1 and 2 are finished.
            FutureTask<Void> loading = new FutureTask<>(() -> {
                workers.submit(batches[0]);
                assertTrue(entered[0].await(WAIT_SECONDS, TimeUnit.SECONDS), "a worker takes batch 0");
                workers.submit(batches[1]);
                assertTrue(entered[1].await(WAIT_SECONDS, TimeUnit.SECONDS), "the other worker takes batch 1");
                workers.submit(batches[2]);
                release[1].countDown();
                batches[1].await();
                batches[2].await();
                release[0].countDown();
                batches[0].await();
                return null;
            });
            Thread thread = new Thread(loading, "loading");
            thread.setDaemon(true);
            thread.start();
            try {
                loading.get(WAIT_SECONDS, TimeUnit.SECONDS);
            } catch (TimeoutException e) {
                fail("batch 2 was not finished in " + WAIT_SECONDS + " s while the worker on batch 0 was held up and"
                        + " the other was idle: it waits for the worker it was given to");
            } finally {
                release[0].countDown();
                release[1].countDown();
            }
            thread.join(TimeUnit.SECONDS.toMillis(WAIT_SECONDS));
            assertTrue(loading.isDone(), "every batch is finished once both workers go on");
            for (int n = 0; n < batches.length; n++) {
                assertNull(batches[n].failure(), "batch " + n);
                for (int i = 0; i < LoadBatch.MAX_BLOCKS; i++) {
                    assertEquals(LoadBatch.READ, batches[n].outcome[i], "batch " + n + ", block " + i);
                }
            }
        }
    }
}
