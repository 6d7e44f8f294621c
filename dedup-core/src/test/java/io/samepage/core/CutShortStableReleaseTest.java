package io.samepage.core;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.samepage.hashing.Pages;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * A destroy whose release of a stable frame's last mapping is cut short by an {@link Error} in the
 * middle ({@link StableRelease}): the release is finished from the step it reached, so the stable index,
 * {@code pages_shared}, the resident registry and the pool agree again and the frame ends free; cut short
 * again while the frame leaves the index, the domain's next release finishes it; cut short again before
 * its free, the frame is withheld and counted. Pages 0 and 1 of the guest share one stable frame, which
 * the resident registry names; pages 2 and 3 hold their own. The Error is injected at one step of the
 * shared frame's last release (page 1's). Before, a release cut short while the frame left the index
 * withheld it, and left {@code pages_shared} and the registry as the cut left them.
 */
class CutShortStableReleaseTest {

    private static final int PAGE = Pages.PAGE_SIZE;
    private static final int PAGES = 4;

    /** Wherever the Error strikes, the finishing ends the release: the frame free, the domain whole. */
    @ParameterizedTest(name = "thrown at step {0}")
    @ValueSource(ints = {StableRelease.DROPPED, StableRelease.UNFILING, StableRelease.UNCOUNTED,
            StableRelease.UNFILED, StableRelease.FREED})
    void anErrorAtAnyStepOfTheLastReleaseStillFreesTheFrameAndLeavesTheDomainWhole(int step) {
        Fixture f = new Fixture();
        try (DedupEngine engine = f.engine) {
            f.failAt(step, 1);
            InternalError thrown = assertThrows(InternalError.class, f.guest::destroy);
            assertSame(f.thrown.get(0), thrown, "the Error reaches the caller");
            assertEquals(0, f.left.get(), "the step was reached");
            assertTrue(f.guest.isDestroyed());
            assertEquals(List.of(), engine.guests(), "the guest is unlisted");
            f.assertFreeAndWhole("after the destroy");
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
     * Cut short, and its finishing cut short too, while the frame leaves the index: the removal is owed,
     * and the domain's next last release, that of another guest's stable frame, finishes it first. Then
     * the frame is free and the domain whole.
     */
    @ParameterizedTest(name = "thrown twice at step {0}")
    @ValueSource(ints = {StableRelease.DROPPED, StableRelease.UNFILING, StableRelease.UNCOUNTED})
    void aRemovalCutShortTwiceIsFinishedByTheDomainsNextRelease(int step) {
        Fixture f = new Fixture();
        try (DedupEngine engine = f.engine) {
            f.failAt(step, 2);
            InternalError thrown = assertThrows(InternalError.class, f.guest::destroy);
            assertEquals(2, f.thrown.size(), "the release and its finishing were both cut short");
            assertSame(f.thrown.get(0), thrown, "the first Error reaches the caller");
            assertEquals(0, engine.counters().framesWithheld(), "the frame is owed its removal, not withheld");
            assertEquals(f.domainFrames + 1, engine.framesInUse(), "only the shared frame is not free yet");
            Guest next = engine.createGuest(f.domain, "next", 2L * PAGE);
            next.fill(0, 2L * PAGE, (byte) 6);
            engine.scanner().scanUntilStable(Scanner.DEFAULT_MAX_FULL_SCANS_TO_SETTLE);
            assertTrue(next.isMerged(0) && next.isMerged(1), "the next guest's pages share a stable frame");
            next.destroy();
            f.assertFreeAndWhole("after the next guest's destroy");
        }
    }

    /**
     * Cut short out of the index and the registry, and its finishing cut short too before the free began:
     * nothing names the frame, yet it was not freed, so it is withheld, counted, and never handed out
     * again, while the domain is whole.
     */
    @Test
    void aFreeCutShortTwiceWithholdsTheFrameCountedWithTheDomainWhole() {
        Fixture f = new Fixture();
        try (DedupEngine engine = f.engine) {
            f.failAt(StableRelease.UNFILED, 2);
            assertThrows(InternalError.class, f.guest::destroy);
            assertEquals(2, f.thrown.size(), "the release and its finishing were both cut short");
            assertEquals(1, engine.counters().framesWithheld(), "the shared frame is withheld, counted");
            assertEquals(f.domainFrames + 1, engine.framesInUse(), "every other page's frame is free");
            EngineInvariants.assertConsistentWithHasherOf(f.context, engine, "after the destroy");
            assertEquals(0, f.domain.residentFrames(), "the registry no longer names it");
            FramePool pool = engine.pool();
            int available = pool.framesAvailable();
            assertTrue(pool.tryReserve(available));
            for (int i = 0; i < available; i++) {
                assertNotEquals(f.shared, pool.allocateReserved(), "the withheld frame is never handed out");
            }
            assertEquals(0, pool.framesAvailable(), "every frame but the withheld one was taken");
        }
    }

    /**
     * With {@code max_page_sharing} 2 the shared frame is full, so page 0's release drops its mapping under
     * the lock: cut short before the drop, it is made again, and page 1's release is the last one. Before,
     * the frame kept that mapping's count for good: filed, counted in {@code pages_shared}, never freed.
     */
    @Test
    void aFullFramesReleaseCutShortBeforeTheDropIsMadeAgain() {
        Fixture f = new Fixture(2);
        try (DedupEngine engine = f.engine) {
            f.failAt(StableRelease.MAPPED, 1);
            InternalError thrown = assertThrows(InternalError.class, f.guest::destroy);
            assertSame(f.thrown.get(0), thrown, "the Error reaches the caller");
            assertEquals(0, f.left.get(), "the step was reached");
            f.assertFreeAndWhole("after the destroy");
        }
    }

    /**
     * An engine, a domain and the guest of the class comment, scanned until pages 0 and 1 share a frame,
     * which is then registered as loaded from a verified image block.
     */
    private static final class Fixture {
        final EngineContext context = new EngineContext().poolBytes(4L << 20).hashSeed(3);
        final DedupEngine engine;
        final MergeDomain domain;
        final long domainFrames;
        final Guest guest;
        final int ids;
        final int shared;
        /** Reaches of the armed step still to throw at. */
        final AtomicInteger left = new AtomicInteger();
        final List<InternalError> thrown = new ArrayList<>();

        Fixture() {
            this(Integer.MAX_VALUE);
        }

        /** With {@code max_page_sharing} {@code maxSharing}, or its default for {@link Integer#MAX_VALUE}. */
        Fixture(int maxSharing) {
            if (maxSharing != Integer.MAX_VALUE) {
                context.knobs().maxPageSharing(maxSharing);
            }
            engine = DedupEngine.create(context.conclude());
            domain = engine.createDomain("d");
            domainFrames = engine.framesInUse();
            guest = engine.createGuest(domain, "g", (long) PAGES * PAGE);
            ids = guest.table().basePageId();
            guest.fill(0, 2L * PAGE, (byte) 3);       // pages 0 and 1: one content, merged into a stable frame
            guest.fill(2L * PAGE, PAGE, (byte) 4);    // pages 2 and 3: frames of their own, unmapped after it
            guest.fill(3L * PAGE, PAGE, (byte) 5);
            engine.scanner().scanUntilStable(Scanner.DEFAULT_MAX_FULL_SCANS_TO_SETTLE);
            assertEquals(1, engine.counters().pagesShared(), "pages 0 and 1 share one stable frame");
            assertTrue(guest.isPrivate(2) && guest.isPrivate(3), "pages 2 and 3 hold frames of their own");
            shared = guest.frameAt(0);
            byte[] digest = new byte[32];
            digest[0] = 3;
            domain.stableLock().lock();
            try {
                domain.makeRegistryRoom();
                domain.register(shared, digest, 0);
            } finally {
                domain.stableLock().unlock();
            }
            assertEquals(1, domain.residentFrames(), "the shared frame is registered");
            EngineInvariants.assertConsistentWithHasherOf(context, engine, "before the destroy");
        }

        /** Arms an Error for each of the next {@code times} reaches of {@code step} by a stable frame's last release. */
        void failAt(int step, int times) {
            left.set(times);
            domain.duringStableRelease(at -> {
                if (at == step && left.getAndUpdate(n -> Math.max(0, n - 1)) > 0) {
                    InternalError injected = new InternalError("injected at step " + step + ", reach " + thrown.size());
                    thrown.add(injected);
                    throw injected;
                }
            });
        }

        /** Every invariant holds, the shared frame is free, nothing is withheld and the registry is empty. */
        void assertFreeAndWhole(String where) {
            EngineInvariants.assertConsistentWithHasherOf(context, engine, where);
            assertEquals(FrameTable.FREE, engine.pool().table().refCount(shared), where + ": the shared frame is free");
            assertEquals(domainFrames, engine.framesInUse(), where + ": every page's frame is free, the shared one's too");
            assertEquals(0, engine.counters().framesWithheld(), where + ": nothing is withheld");
            assertEquals(0, domain.residentFrames(), where + ": the registry no longer names the shared frame");
        }
    }
}
