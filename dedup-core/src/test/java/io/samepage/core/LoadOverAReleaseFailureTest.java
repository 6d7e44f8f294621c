package io.samepage.core;

import static io.samepage.core.FailingRelease.block;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.samepage.hashing.ContentDigest;
import io.samepage.hashing.Pages;
import java.lang.foreign.MemorySegment;
import java.util.concurrent.atomic.AtomicBoolean;
import org.junit.jupiter.api.Test;

/**
 * A load ({@link PageInstaller#install}, {@link PageInstaller#mapResident}) drops the frame the page held
 * before once the page maps the loaded one; where the pool frees that frame and its backing's release
 * throws an {@link Error} (after the frame is free and zeroed in place, {@link FramePool#free}), the load
 * is done and says so: it returns true, the page reads the block, the engine is whole, and the failure is
 * counted ({@link FramePool}'s "Release failures"). Before, the
 * Error came out of the load, which its caller takes for a load that changed nothing (an image loader
 * counted the block failed).
 */
class LoadOverAReleaseFailureTest {

    private static final int PAGE = Pages.PAGE_SIZE;

    private final AtomicBoolean armed = new AtomicBoolean();
    private final EngineContext context = FailingRelease.context(armed);

    @Test
    void anInstallOverAPrivatePageWhoseFrameCannotBeReleasedIsDone() {
        try (DedupEngine engine = DedupEngine.create(context.conclude())) {
            MergeDomain domain = engine.createDomain("d");
            long domainFrames = engine.framesInUse();
            Guest guest = engine.createGuest(domain, "g", PAGE);
            guest.write(0, block(9), 0, PAGE);
            byte[] bytes = block(7);
            armed.set(true);
            assertTrue(engine.newPageInstaller().install(guest, 0, fill(bytes), digestOf(bytes), 0));
            assertLoaded(engine, guest, bytes, domainFrames + 1);
        }
    }

    /** The page mapped a stable frame no other page maps: the install drops its last mapping, which frees it. */
    @Test
    void anInstallOverTheLastMappingOfAStableFrameThatCannotBeReleasedIsDone() {
        try (DedupEngine engine = DedupEngine.create(context.conclude())) {
            MergeDomain domain = engine.createDomain("d");
            long domainFrames = engine.framesInUse();
            Guest guest = engine.createGuest(domain, "g", PAGE);
            Guest twin = engine.createGuest(domain, "twin", PAGE);
            guest.write(0, block(9), 0, PAGE);
            twin.write(0, block(9), 0, PAGE);
            engine.scanner().scanUntilStable(Scanner.DEFAULT_MAX_FULL_SCANS_TO_SETTLE);
            assertTrue(guest.isMerged(0), "the twins merged");
            twin.destroy();
            byte[] bytes = block(7);
            armed.set(true);
            assertTrue(engine.newPageInstaller().install(guest, 0, fill(bytes), digestOf(bytes), 0));
            assertLoaded(engine, guest, bytes, domainFrames + 1);
        }
    }

    @Test
    void aResidentMappingOverAPrivatePageWhoseFrameCannotBeReleasedIsDone() {
        try (DedupEngine engine = DedupEngine.create(context.conclude())) {
            MergeDomain domain = engine.createDomain("d");
            long domainFrames = engine.framesInUse();
            Guest loaded = engine.createGuest(domain, "loaded", PAGE);
            Guest guest = engine.createGuest(domain, "g", PAGE);
            byte[] bytes = block(7);
            PageInstaller installer = engine.newPageInstaller();
            assertTrue(installer.install(loaded, 0, fill(bytes), digestOf(bytes), 0));
            guest.write(0, block(9), 0, PAGE);
            armed.set(true);
            assertTrue(installer.mapResident(guest, 0, digestOf(bytes), 0));
            assertLoaded(engine, guest, bytes, domainFrames + 1);
        }
    }

    /**
     * The armed release was reached, the page reads {@code bytes}, and only {@code frames} frames are in
     * use: the domain's own (its zero frame) and the loaded block's.
     */
    private void assertLoaded(DedupEngine engine, Guest guest, byte[] bytes, long frames) {
        assertFalse(armed.get(), "the release of the page's previous frame was reached");
        assertEquals(1, engine.counters().frameReleaseFailures(), "the failed release is counted");
        byte[] read = new byte[PAGE];
        guest.read(0, read, 0, PAGE);
        assertArrayEquals(bytes, read, "the page reads the loaded block");
        assertEquals(frames, engine.framesInUse(), "the previous frame is free");
        EngineInvariants.assertConsistentWithHasherOf(context, engine, "after the load");
    }

    private static byte[] digestOf(byte[] bytes) {
        return new ContentDigest().digest(MemorySegment.ofArray(bytes), 0);
    }

    private static PageInstaller.PageFill fill(byte[] bytes) {
        return page -> MemorySegment.copy(MemorySegment.ofArray(bytes), 0, page, 0, PAGE);
    }
}
