package io.samepage.core;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.samepage.hashing.Pages;
import java.util.List;
import java.util.concurrent.atomic.AtomicBoolean;
import org.junit.jupiter.api.Test;

/**
 * A destroy frees its guest's private frames page by page once the guest is down; where the backing's
 * release of one throws an {@link Error} (after the frame is free and zeroed in place, {@link
 * FramePool#free}), the destroy still frees every other page's frame and gives its ids to the quarantine,
 * and does not throw: it is done, and the failure is counted ({@link FramePool}'s "Release failures").
 * Any other {@link Error} a page's unmap meets (here one on the way out of the stable release) does not
 * stop the destroy either: every other page's frame is freed and the ids quarantined, and then the Error
 * is thrown. Before, such an Error stopped it at that page: the guest was destroyed and unlisted, but the
 * frames of the pages after it stayed in use for good and its page ids were never quarantined, and a
 * second destroy did nothing.
 */
class DestroyOverAReleaseFailureTest {

    private static final int PAGE = Pages.PAGE_SIZE;
    private static final int PAGES = 4;

    @Test
    void aDestroyWhoseFirstFramesReleaseThrowsFreesEveryFrame() {
        AtomicBoolean armed = new AtomicBoolean();
        EngineContext context = FailingRelease.context(armed);
        try (DedupEngine engine = DedupEngine.create(context.conclude())) {
            MergeDomain domain = engine.createDomain("d");
            long domainFrames = engine.framesInUse();
            Guest guest = engine.createGuest(domain, "g", (long) PAGES * PAGE);
            guest.fill(0, (long) PAGES * PAGE, (byte) 3);
            int ids = guest.table().basePageId();
            armed.set(true);
            guest.destroy();
            assertFalse(armed.get(), "the release of the first page's frame was reached");
            assertEquals(1, engine.counters().frameReleaseFailures(), "the failed release is counted");
            assertTrue(guest.isDestroyed());
            assertEquals(domainFrames, engine.framesInUse(), "every page's frame is free");
            EngineInvariants.assertConsistentWithHasherOf(context, engine, "after the destroy");
            assertNull(engine.pageOwner(ids), "the guest's ids are back (no unstable index names them)");
        }
    }

    @Test
    void anErrorFreeingAStableFrameIsThrownOnceEveryOtherPageIsFreed() {
        EngineContext context = new EngineContext().poolBytes(4L << 20).hashSeed(3);
        try (DedupEngine engine = DedupEngine.create(context.conclude())) {
            MergeDomain domain = engine.createDomain("d");
            long domainFrames = engine.framesInUse();
            Guest guest = engine.createGuest(domain, "g", (long) PAGES * PAGE);
            guest.fill(0, 2L * PAGE, (byte) 3);       // pages 0 and 1: one content, merged into a stable frame
            guest.fill(2L * PAGE, PAGE, (byte) 4);    // pages 2 and 3: frames of their own, unmapped after it
            guest.fill(3L * PAGE, PAGE, (byte) 5);
            engine.scanner().scanUntilStable(Scanner.DEFAULT_MAX_FULL_SCANS_TO_SETTLE);
            assertEquals(1, engine.counters().pagesShared(), "pages 0 and 1 share one stable frame");
            assertTrue(guest.isPrivate(2) && guest.isPrivate(3), "pages 2 and 3 hold frames of their own");
            int ids = guest.table().basePageId();
            AtomicBoolean reached = new AtomicBoolean();
            InternalError injected = new InternalError("injected: an Error leaving the stable release");
            domain.afterStableFrameFreed(() -> {
                reached.set(true);
                throw injected;
            });
            InternalError thrown = assertThrows(InternalError.class, guest::destroy);
            assertTrue(reached.get(), "the stable frame's last release was reached");
            assertSame(injected, thrown, "the Error reaches the caller");
            assertTrue(guest.isDestroyed());
            assertEquals(List.of(), engine.guests(), "the guest is unlisted");
            assertEquals(domainFrames, engine.framesInUse(), "every page's frame is free, those after the stable one's too");
            EngineInvariants.assertConsistentWithHasherOf(context, engine, "after the destroy");
            // Pages 2 and 3 are filed in the unstable index: the ids wait in quarantine until the next full scan.
            engine.scanner().scanFullPass();
            for (int page = 0; page < PAGES; page++) {
                assertNull(engine.pageOwner(ids + page), "page " + page + "'s id went to the quarantine and is back");
            }
        }
    }
}
