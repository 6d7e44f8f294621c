package io.samepage.core;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;

import io.samepage.hashing.Pages;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.SplittableRandom;
import java.util.concurrent.atomic.AtomicBoolean;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * A batch that reaches the end of a full scan ends it even if a visit in it threw, and then throws:
 * {@code full_scans} counts the scan at once, and the next batch starts the next one. Before, on one
 * thread (the visit of the scan's last page threw) and on two (any visit threw), the scan was left open
 * and the next batch ended it having visited nothing, so {@code full_scans}, the advisor's timing and
 * {@link Scanner#scanUntilStable}'s quiet scans were a batch late. A visit that throws costs only its
 * page, on any number of threads: the batch visits the rest of what it listed.
 */
class FullScanEndOnFailureTest {

    private static final int PAGE = Pages.PAGE_SIZE;
    /** Pages written in each guest: one run of the cursor. */
    private static final int WRITTEN = 64;
    /** A batch that covers the whole scan. */
    private static final int BUDGET = 1000;
    /** The first word of the page whose hash throws. */
    private static final long MARKER = 0x5CA7_E2D0_F00D_0001L;

    /** The scan's last page throws; with no page after it to visit, or after it only pages never written. */
    @ParameterizedTest(name = "{0} scan threads")
    @ValueSource(ints = {1, 2})
    @Timeout(value = 60, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
    void aBatchWhoseLastVisitThrowsStillEndsTheFullScan(int threads) {
        for (int size : new int[] {WRITTEN, 2 * WRITTEN}) {       // then 64 pages never written after the last one
            Fixture f = new Fixture(threads, size, 1);
            try (DedupEngine engine = f.engine) {
                f.failOn(0, WRITTEN - 1);
                assertThrows(MarkedPageHasher.InjectedError.class, () -> f.scanner.scanBatch(BUDGET), f.where());
                assertFalse(f.armed.get(), "the failing page was hashed; " + f.where());
                assertEquals(2, f.scanner.fullScans(), "the batch that reached the scan's end ended it; " + f.where());
                assertEquals(WRITTEN, f.scanner.scanBatch(BUDGET), "the next batch is a whole full scan; " + f.where());
                assertEquals(3, f.scanner.fullScans(), f.where());
                EngineInvariants.assertConsistentWithHasherOf(f.context, engine, f.where());
            }
        }
    }

    /**
     * A visit that throws anywhere in the batch costs only its page, on one thread as on two, so a batch
     * that listed the scan's last run ends it. (One thread's batch used to stop at the page that threw,
     * and the scan ended with the next batch, which visited the rest.)
     */
    @ParameterizedTest(name = "{0} scan threads")
    @ValueSource(ints = {1, 2})
    @Timeout(value = 60, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
    void aVisitThatThrowsBeforeTheScansLastPageStillEndsIt(int threads) {
        Fixture f = new Fixture(threads, WRITTEN, 1);
        try (DedupEngine engine = f.engine) {
            f.failOn(0, 10);
            assertThrows(MarkedPageHasher.InjectedError.class, () -> f.scanner.scanBatch(BUDGET), f.where());
            assertEquals(2, f.scanner.fullScans(), "the batch visited the rest and ended the scan; " + f.where());
            assertEquals(WRITTEN, f.scanner.scanBatch(BUDGET), "the next batch is a whole full scan; " + f.where());
            EngineInvariants.assertConsistentWithHasherOf(f.context, engine, f.where());
        }
    }

    /**
     * The last page of the first guest's run throws, and the second guest's run is listed after it in
     * the same batch: the batch visits that run too and ends the scan.
     */
    @ParameterizedTest(name = "{0} scan threads")
    @ValueSource(ints = {1, 2})
    @Timeout(value = 60, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
    void aRunsLastVisitThatThrowsBeforeAnotherGuestsRunStillEndsTheScan(int threads) {
        Fixture f = new Fixture(threads, WRITTEN, 2);
        try (DedupEngine engine = f.engine) {
            f.failOn(0, WRITTEN - 1);
            assertThrows(MarkedPageHasher.InjectedError.class, () -> f.scanner.scanBatch(BUDGET), f.where());
            assertEquals(2, f.scanner.fullScans(), "the second guest's run was visited in the same batch");
            assertEquals(2 * WRITTEN, f.scanner.scanBatch(BUDGET), "the next batch is a whole full scan");
            assertEquals(3, f.scanner.fullScans());
            EngineInvariants.assertConsistentWithHasherOf(f.context, engine, f.where());
        }
    }

    /** Guests of {@code size} pages whose first {@value #WRITTEN} are unique, after one full scan. */
    private static final class Fixture {
        final AtomicBoolean armed = new AtomicBoolean();
        final EngineContext context;
        final DedupEngine engine;
        final Scanner scanner;
        final Guest[] guests;
        final int threads;
        final int size;

        Fixture(int threads, int size, int guestCount) {
            this.threads = threads;
            this.size = size;
            context = new EngineContext().poolBytes(4L * guestCount * size * PAGE + (1 << 20))
                    .customHasher(new MarkedPageHasher(new EngineContext().hashSeed(5).newScannerHasher(), MARKER, armed));
            context.knobs().smartScan(false).scanThreads(threads);
            engine = DedupEngine.create(context.conclude());
            MergeDomain domain = engine.createDomain("d");
            guests = new Guest[guestCount];
            SplittableRandom random = new SplittableRandom(7);
            for (int g = 0; g < guestCount; g++) {
                guests[g] = engine.createGuest(domain, "g" + g, (long) size * PAGE);
                byte[] bytes = new byte[WRITTEN * PAGE];
                random.nextBytes(bytes);
                guests[g].write(0, bytes, 0, bytes.length);
            }
            scanner = engine.scanner();
            scanner.scanFullPass();
            assertEquals(1, scanner.fullScans());
        }

        /** Marks {@code page} of guest {@code g}, and arms the hasher to throw once on it. */
        void failOn(int g, int page) {
            byte[] word = new byte[Long.BYTES];
            MemorySegment.ofArray(word).set(ValueLayout.JAVA_LONG_UNALIGNED, 0, MARKER);
            guests[g].write((long) page * PAGE, word, 0, word.length);
            armed.set(true);
        }

        String where() {
            return threads + " threads, guests of " + size + " pages";
        }
    }
}
