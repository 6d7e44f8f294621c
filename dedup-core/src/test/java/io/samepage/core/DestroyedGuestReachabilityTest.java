package io.samepage.core;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.samepage.hashing.Pages;
import java.lang.ref.WeakReference;
import java.util.SplittableRandom;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * A guest destroyed while a full scan is under way is dropped from the scanner's round (and the round's
 * cursor) at the scanner's next batch: once its page ids are released, nothing of the engine reaches
 * it or its page table. Before, the round held both until the next full scan started, which with KSM's
 * pacing and a large guest is minutes. Reachability is read from weak references after at most
 * {@value #COLLECTIONS} collections, never from time.
 */
class DestroyedGuestReachabilityTest {

    private static final int PAGE = Pages.PAGE_SIZE;
    private static final int COLLECTIONS = 20;

    /** The destroyed guest and its page table, reached only weakly. */
    private record Gone(WeakReference<Guest> guest, WeakReference<PageTable> table) {
    }

    @ParameterizedTest(name = "scan_threads={0}")
    @ValueSource(ints = {1, 2})
    void aGuestDestroyedDuringAFullScanIsDroppedFromItsRoundAtTheNextBatch(int threads) {
        EngineContext context = new EngineContext().poolBytes(64L << 20).hashSeed(5);
        context.knobs().smartScan(false).scanThreads(threads);
        try (DedupEngine engine = DedupEngine.create(context.conclude())) {
            MergeDomain domain = engine.createDomain("d");
            Guest resident = engine.createGuest(domain, "resident", 4L * ScanCursor.CHUNK_PAGES * PAGE);
            byte[] bytes = new byte[(int) resident.sizeBytes()];
            new SplittableRandom(1).nextBytes(bytes);
            resident.write(0, bytes, 0, bytes.length);
            Gone gone = destroyedDuringAFullScan(engine, domain);
            engine.scanner().scanBatch(1);
            assertEquals(0, engine.scanner().fullScans(), "the full scan is still under way");
            for (int i = 0; i < COLLECTIONS && (gone.guest().get() != null || gone.table().get() != null); i++) {
                System.gc();
            }
            assertNull(gone.guest().get(), "the destroyed guest is still reachable after " + COLLECTIONS + " collections");
            assertNull(gone.table().get(), "its page table is still reachable after " + COLLECTIONS + " collections");
        }
    }

    /**
     * Starts a full scan whose round holds a guest that wrote a page the round has not reached (so no
     * unstable index names it, and its ids are released at its destroy), then destroys it.
     */
    private static Gone destroyedDuringAFullScan(DedupEngine engine, MergeDomain domain) {
        Guest doomed = engine.createGuest(domain, "doomed", 2L * ScanCursor.CHUNK_PAGES * PAGE);
        doomed.write(0, new byte[] {1}, 0, 1);
        engine.scanner().scanBatch(1);      // starts the full scan: its round holds both guests
        assertTrue(engine.scanner().pagesScanned() > 0, "the full scan started");
        Gone gone = new Gone(new WeakReference<>(doomed), new WeakReference<>(doomed.table()));
        doomed.destroy();
        assertEquals(null, engine.pageOwner(doomed.table().basePageId()), "its page ids were released at its destroy");
        return gone;
    }
}
