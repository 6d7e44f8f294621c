package io.samepage.kvm;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.samepage.core.DedupEngine;
import io.samepage.core.MergeDomain;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * The fault branch of {@link MappedGuest#handleExit} ({@link MappedGuest#breakSharing}, by guest address,
 * so no VM is needed) racing another writer of the same merged page: the exit breaks sharing while a
 * Java thread writes the page through the engine's {@code Guest}, as another vCPU's exit or the
 * embedder would. Whichever breaks first, no write may be lost. Each merged page is raced once, the
 * two threads released together by a spin barrier so they land within a few hundred nanoseconds.
 */
@Timeout(120)
class CopyOnWriteExitTest {

    private static final int PAGE = MappedGuestMemory.PAGE_BYTES;
    private static final int PAGES = 2048;

    /** The kernel's fault names the page (its first byte); the Java writer writes that same byte. */
    @Test
    void faultBreakRacingAJavaWriteToTheSameByteLosesNoWrite() {
        try (DedupEngine engine = MappedEngineTest.engine("fault-race", 2 * PAGES + 64, MappingBudget.host())) {
            engine.knobs().smartScan(false);
            MergeDomain domain = engine.createDomain("d");
            MappedGuest racer = MappedGuest.create(engine, domain, "racer", (long) PAGES * PAGE);
            MappedGuest twin = MappedGuest.create(engine, domain, "twin", (long) PAGES * PAGE);
            byte[] image = MappedEngineTest.image(PAGES, 21);
            racer.guest().write(0, image, 0, image.length);
            twin.guest().write(0, image, 0, image.length);
            for (int scan = 0; scan < 3; scan++) {
                engine.scanner().scanFullPass();
            }
            assertEquals(PAGES, engine.counters().pagesSharing(), "every page merged before the race");

            AtomicInteger arrived = new AtomicInteger();
            Thread writer = Thread.ofPlatform().name("java-writer").start(() -> {
                for (int page = 0; page < PAGES; page++) {
                    awaitBoth(arrived, page);
                    racer.guest().write((long) page * PAGE, new byte[] {written(page)}, 0, 1);
                }
            });
            for (int page = 0; page < PAGES; page++) {
                awaitBoth(arrived, page);
                racer.breakSharing((long) page * PAGE);
            }
            join(writer);

            int lost = 0;
            for (int page = 0; page < PAGES; page++) {
                lost += racer.guest().readByte((long) page * PAGE) == written(page) ? 0 : 1;
            }
            assertEquals(0, lost, "pages of " + PAGES + " whose Java write the fault's break overwrote with an older byte");
            for (int page = 0; page < PAGES; page++) {
                byte[] want = new byte[PAGE];
                System.arraycopy(image, page * PAGE, want, 0, PAGE);
                want[0] = written(page);
                assertArrayEquals(want, MappedEngineTest.readPage(racer.guest(), page), "page " + page);
                assertTrue(racer.memory().writable(page), "page " + page + " is the racer's own again, writable");
            }
            assertArrayEquals(image, MappedEngineTest.readAll(twin.guest()), "the twin kept the shared bytes");
            assertArrayEquals(MappedEngineTest.readAll(racer.guest()), MappedEngineTest.readAll(racer.memory()),
                    "the racer's mappings agree with the engine");
        }
    }

    /** What the writer writes to {@code page}; equal to the image's byte by chance (1 in 256), it hides a loss. */
    private static byte written(int page) {
        return (byte) (page * 7 + 1);
    }

    /** Spins until both threads reached round {@code round}: releases them within a few hundred ns. */
    private static void awaitBoth(AtomicInteger arrived, int round) {
        arrived.incrementAndGet();
        while (arrived.get() < 2 * (round + 1)) {
            Thread.onSpinWait();
        }
    }

    private static void join(Thread thread) {
        try {
            thread.join();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new AssertionError("interrupted", e);
        }
    }
}
