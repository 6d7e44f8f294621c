package io.samepage.core;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.samepage.hashing.PageHasher;
import io.samepage.hashing.Pages;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import org.agrona.concurrent.AgentRunner;
import org.agrona.concurrent.AgentTerminationException;
import org.agrona.concurrent.BusySpinIdleStrategy;
import org.junit.jupiter.api.Test;

/** Creating and closing: nothing leaks when the host fails underneath, and close stops the scanner first. */
class EngineLifecycleTest {

    private static final int PAGE = Pages.PAGE_SIZE;

    @Test
    void mappingFactoryThatRunsOutOfMemoryGivesTheFrameRunBack() {
        try (DedupEngine engine = DedupEngine.create(new EngineContext().poolBytes(8L << 20).conclude())) {
            MergeDomain domain = engine.createDomain("d");
            long before = engine.framesInUse();
            assertThrows(OutOfMemoryError.class, () -> engine.createGuest(domain, "vm", 64L * PAGE, (first, pages) -> {
                throw new OutOfMemoryError("injected");
            }));
            assertEquals(before, engine.framesInUse(), "the guest's run of frames went back to the pool");
            assertTrue(engine.guests().isEmpty());
            engine.createGuest(domain, "vm", 64L * PAGE, RecordingMapping::new);   // and the name is free
        }
    }

    /**
     * A destroyed guest's page ids, and with them its page table, come back at the destroy when no
     * unstable index names a page. They waited for the next full scan, so an engine that creates and
     * destroys guests without scanning kept every page table it ever made (and ran out of ids after
     * 2^19 guests). Once the scanner has filed pages, they still wait for that scan.
     */
    @Test
    void aDestroyedGuestsIdsComeBackAtOnceWhileNoIndexNamesAPage() {
        try (DedupEngine engine = DedupEngine.create(new EngineContext().poolBytes(16L << 20).conclude())) {
            MergeDomain domain = engine.createDomain("d");
            Guest first = engine.createGuest(domain, "first", 1L << 20);
            int base = first.table().basePageId();
            first.destroy();
            Guest second = engine.createGuest(domain, "second", 1L << 20);
            assertEquals(base, second.table().basePageId(), "the destroyed guest's ids, reused at once");

            byte[] unique = new byte[1 << 20];
            new java.util.SplittableRandom(1).nextBytes(unique);
            second.write(0, unique, 0, unique.length);
            engine.scanner().scanFullPass();
            engine.scanner().scanFullPass();
            assertTrue(engine.counters().pagesUnshared() > 0, "pages filed: " + engine.counters());
            second.destroy();
            Guest third = engine.createGuest(domain, "third", 1L << 20);
            assertTrue(third.table().basePageId() != base, "ids an index may name wait for the next full scan");
            engine.scanner().scanFullPass();
            assertEquals(base, engine.createGuest(domain, "fourth", 1L << 20).table().basePageId(),
                    "and come back when it starts");
        }
    }

    @Test
    void closeStopsARunningScannerBeforeTheMemoryGoes() throws Exception {
        EngineContext context = new EngineContext().poolBytes(64L << 20);
        context.knobs().sleepMillis(0).pagesToScan(64);
        DedupEngine engine = DedupEngine.create(context.conclude());
        Guest guest = engine.createGuest(engine.createDomain("d"), "g", 4096L * PAGE);
        byte[] page = new byte[PAGE];
        for (int p = 0; p < 4096; p++) {
            Arrays.fill(page, (byte) (p % 7 + 1));
            guest.write((long) p * PAGE, page, 0, PAGE);
        }
        List<Throwable> errors = new CopyOnWriteArrayList<>();
        AgentRunner runner = new AgentRunner(new BusySpinIdleStrategy(), errors::add, null, engine.scanner());
        Thread thread = AgentRunner.startOnThread(runner);
        TimeUnit.MILLISECONDS.sleep(50);
        engine.close();
        thread.join(TimeUnit.SECONDS.toMillis(10));
        assertFalse(thread.isAlive(), "the scanner's thread ended with the engine");
        errors.removeIf(e -> e instanceof AgentTerminationException);    // how the runner is told to stop
        assertEquals(Collections.emptyList(), errors, "and never touched the closed pool");
        runner.close();
    }
    /**
     * The runner's duty cycle found the engine open, then waited for the batch lock while another thread
     * scanned; close came in between. The cycle must end as a stop, not as an error for the runner's
     * handler (it did, now and then, in CI).
     */
    @Test
    void closeWhileTheRunnersCycleWaitsForTheBatchLockEndsItAsAStop() throws Exception {
        CountDownLatch hashing = new CountDownLatch(1);
        CountDownLatch release = new CountDownLatch(1);
        AtomicBoolean armed = new AtomicBoolean();
        PageHasher blocking = WeakHashers.around(new EngineContext().newScannerHasher(), () -> {
            if (armed.compareAndSet(true, false)) {
                hashing.countDown();
                try {
                    release.await();
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
            }
        });
        EngineContext context = new EngineContext().poolBytes(64L << 20).customHasher(blocking);
        context.knobs().sleepMillis(0).pagesToScan(64);
        DedupEngine engine = DedupEngine.create(context.conclude());
        Guest guest = engine.createGuest(engine.createDomain("d"), "g", 64L * PAGE);
        guest.write(0, new byte[] {1}, 0, 1);
        engine.scanner().scanFullPass();                                   // first visits hash nothing
        armed.set(true);
        Thread scanning = new Thread(() -> {
            try {
                engine.scanner().scanFullPass();                           // holds the batch lock, blocked in a hash
            } catch (DedupException closedUnderIt) {
                // its next batch found the engine closed: expected for a caller's own scan
            }
        });
        scanning.start();
        assertTrue(hashing.await(10, TimeUnit.SECONDS), "the scan reached its hash");
        List<Throwable> errors = new CopyOnWriteArrayList<>();
        AgentRunner runner = new AgentRunner(new BusySpinIdleStrategy(), errors::add, null, engine.scanner());
        Thread cycle = AgentRunner.startOnThread(runner);
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (cycle.getState() != Thread.State.WAITING && System.nanoTime() < deadline) {
            Thread.onSpinWait();                                           // until it waits for the batch lock
        }
        assertEquals(Thread.State.WAITING, cycle.getState(), "the runner's cycle waits for the batch lock");
        Thread closing = new Thread(engine::close);
        closing.start();
        while (closing.getState() != Thread.State.WAITING && System.nanoTime() < deadline) {
            Thread.onSpinWait();                                           // close waits for the batch too
        }
        release.countDown();
        closing.join(TimeUnit.SECONDS.toMillis(10));
        scanning.join(TimeUnit.SECONDS.toMillis(10));
        cycle.join(TimeUnit.SECONDS.toMillis(10));
        assertFalse(cycle.isAlive(), "the runner's thread ended with the engine");
        errors.removeIf(e -> e instanceof AgentTerminationException);
        assertEquals(Collections.emptyList(), errors, "the runner's handler saw no error");
        runner.close();
    }
}
