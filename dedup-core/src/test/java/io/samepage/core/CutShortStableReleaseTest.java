package io.samepage.core;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.samepage.hashing.Pages;
import java.util.List;
import java.util.concurrent.atomic.AtomicBoolean;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * A destroy whose release of a stable frame's last mapping is cut short by an {@link Error} in the
 * middle ({@link MergeDomain#releaseStable}): the frame still ends free where that is safe, else it is
 * withheld and counted. Pages 0 and 1 of the guest share one stable frame, pages 2 and 3 hold their own;
 * the Error is injected at one step of the shared frame's last release (page 1's). Before, the frame was
 * lost at every such step: in use for good, counted nowhere, and still filed in the stable index when the
 * Error came before its removal.
 */
class CutShortStableReleaseTest {

    private static final int PAGE = Pages.PAGE_SIZE;
    private static final int PAGES = 4;

    /** Its last mapping dropped and the index untouched, or out of the index and not yet free: it is freed. */
    @ParameterizedTest(name = "thrown at step {0}")
    @ValueSource(ints = {MergeDomain.DROPPED, MergeDomain.UNFILED})
    void anErrorBeforeTheIndexChangesOrAfterItIsDoneStillFreesTheFrame(int step) {
        Fixture f = new Fixture();
        try (DedupEngine engine = f.engine) {
            InternalError injected = f.failAt(step);
            InternalError thrown = assertThrows(InternalError.class, f.guest::destroy);
            assertSame(injected, thrown, "the Error reaches the caller");
            assertFalse(f.armed.get(), "the step was reached");
            assertTrue(f.guest.isDestroyed());
            assertEquals(List.of(), engine.guests(), "the guest is unlisted");
            assertEquals(f.domainFrames, engine.framesInUse(), "every page's frame is free, the shared one's too");
            assertEquals(0, engine.counters().framesWithheld(), "nothing is withheld");
            EngineInvariants.assertConsistentWithHasherOf(f.context, engine, "after the destroy");
            engine.scanner().scanFullPass();
            for (int page = 0; page < PAGES; page++) {
                assertNull(engine.pageOwner(f.ids + page), "page " + page + "'s id went to the quarantine and is back");
            }
            Guest again = engine.createGuest(f.domain, "again", 2L * PAGE);
            again.fill(0, 2L * PAGE, (byte) 3);
            engine.scanner().scanUntilStable(Scanner.DEFAULT_MAX_FULL_SCANS_TO_SETTLE);
            assertEquals(1, engine.counters().pagesShared(), "the content merges again, into a new stable frame");
            EngineInvariants.assertConsistentWithHasherOf(f.context, engine, "after the content merged again");
        }
    }

    /**
     * Cut short while it leaves the index, the release cannot tell how far it got, so the frame is never
     * freed (the index or the registry may still name it): it is withheld, counted, and never handed out
     * again, while the other pages' frames are freed. The counters of the frame's domain stay as the cut
     * left them, so the invariants are not checked here.
     */
    @Test
    void anErrorWhileTheFrameLeavesTheIndexWithholdsItCounted() {
        Fixture f = new Fixture();
        try (DedupEngine engine = f.engine) {
            int shared = f.guest.frameAt(0);
            f.failAt(MergeDomain.UNFILING);
            assertThrows(InternalError.class, f.guest::destroy);
            assertFalse(f.armed.get(), "the step was reached");
            assertEquals(1, engine.counters().framesWithheld(), "the shared frame is withheld, counted");
            assertEquals(f.domainFrames + 1, engine.framesInUse(), "every other page's frame is free");
            FramePool pool = engine.pool();
            int available = pool.framesAvailable();
            assertTrue(pool.tryReserve(available));
            for (int i = 0; i < available; i++) {
                assertNotEquals(shared, pool.allocateReserved(), "the withheld frame is never handed out");
            }
            assertEquals(0, pool.framesAvailable(), "every frame but the withheld one was taken");
        }
    }

    /** An engine, a domain and the guest of the class comment, scanned until pages 0 and 1 share a frame. */
    private static final class Fixture {
        final EngineContext context = new EngineContext().poolBytes(4L << 20).hashSeed(3);
        final DedupEngine engine = DedupEngine.create(context.conclude());
        final MergeDomain domain = engine.createDomain("d");
        final long domainFrames = engine.framesInUse();
        final Guest guest = engine.createGuest(domain, "g", (long) PAGES * PAGE);
        final int ids = guest.table().basePageId();
        final AtomicBoolean armed = new AtomicBoolean();

        Fixture() {
            guest.fill(0, 2L * PAGE, (byte) 3);       // pages 0 and 1: one content, merged into a stable frame
            guest.fill(2L * PAGE, PAGE, (byte) 4);    // pages 2 and 3: frames of their own, unmapped after it
            guest.fill(3L * PAGE, PAGE, (byte) 5);
            engine.scanner().scanUntilStable(Scanner.DEFAULT_MAX_FULL_SCANS_TO_SETTLE);
            assertEquals(1, engine.counters().pagesShared(), "pages 0 and 1 share one stable frame");
            assertTrue(guest.isPrivate(2) && guest.isPrivate(3), "pages 2 and 3 hold frames of their own");
        }

        /** Arms an Error for the next stable release that reaches {@code step}; returns it. */
        InternalError failAt(int step) {
            InternalError injected = new InternalError("injected at step " + step + " of a stable frame's last release");
            armed.set(true);
            domain.duringStableRelease(at -> {
                if (at == step && armed.compareAndSet(true, false)) {
                    throw injected;
                }
            });
            return injected;
        }
    }
}
