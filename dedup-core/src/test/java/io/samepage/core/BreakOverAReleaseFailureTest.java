package io.samepage.core;

import static io.samepage.core.FailingRelease.block;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.samepage.hashing.Pages;
import java.util.concurrent.atomic.AtomicBoolean;
import org.junit.jupiter.api.Test;

/**
 * A copy-on-write break that drops the last mapping of a stable frame frees that frame, and the pool's
 * release of it may fail (its backing throws, here an {@link Error}). The page must read the bytes of
 * the frame it broke onto whatever that drop does. Before, the break dropped the old frame first
 * ({@link Guest#unmap}: the page on the zero frame) and pointed the page at its new frame only after:
 * when the drop threw, the page stayed on the zero frame, read zeros, and its new frame, mapped by the
 * host, was in use for good with no page on it. Now the pool counts the failed release and does not
 * throw it ({@link FramePool}'s "Release failures"), so the break also reports no failure.
 *
 * <p>Two breaks reach such a free without a race: a mapped guest's write (a mapped page always copies,
 * even as the last mapper of its frame) and {@link Guest#breakSharing} (the unmerge, which always copies).
 */
class BreakOverAReleaseFailureTest {

    private static final int PAGE = Pages.PAGE_SIZE;

    private final AtomicBoolean armed = new AtomicBoolean();
    private final EngineContext context = FailingRelease.context(armed);

    @Test
    void aMappedPagesWriteThatFreesItsStableFrameReadsWhatItWrote() {
        RecordingMapping[] maps = new RecordingMapping[2];
        try (DedupEngine engine = DedupEngine.create(context.conclude())) {
            MergeDomain domain = engine.createDomain("d");
            Guest guest = engine.createGuest(domain, "g", PAGE, (first, count) -> maps[0] = new RecordingMapping(first, count));
            Guest twin = engine.createGuest(domain, "twin", PAGE, (first, count) -> maps[1] = new RecordingMapping(first, count));
            byte[] expected = lastMapperOfAStableFrame(engine, guest, twin);
            expected[100] = 42;
            armed.set(true);
            guest.write(100, new byte[] {42}, 0, 1);
            assertBrokeOnto(engine, guest, expected);
            assertEquals(guest.frameAt(0), maps[0].frames[0], "the host maps the page's frame");
        }
    }

    /** The same through an access path's write, which breaks the page ({@link GuestWrites#makeWritable}) and then stores. */
    @Test
    void aMappedPagesAccessWriteThatFreesItsStableFrameReadsWhatItWrote() {
        RecordingMapping[] maps = new RecordingMapping[2];
        try (DedupEngine engine = DedupEngine.create(context.conclude())) {
            MergeDomain domain = engine.createDomain("d");
            Guest guest = engine.createGuest(domain, "g", PAGE, (first, count) -> maps[0] = new RecordingMapping(first, count));
            Guest twin = engine.createGuest(domain, "twin", PAGE, (first, count) -> maps[1] = new RecordingMapping(first, count));
            byte[] expected = lastMapperOfAStableFrame(engine, guest, twin);
            expected[100] = 42;
            GuestAccess access = guest.access();
            armed.set(true);
            access.writeByte(100, (byte) 42);
            assertBrokeOnto(engine, guest, expected);
            assertEquals(guest.frameAt(0), maps[0].frames[0], "the host maps the page's frame");
        }
    }

    @Test
    void aBreakSharingThatFreesTheStableFrameKeepsThePagesBytes() {
        try (DedupEngine engine = DedupEngine.create(context.conclude())) {
            MergeDomain domain = engine.createDomain("d");
            Guest guest = engine.createGuest(domain, "g", PAGE);
            Guest twin = engine.createGuest(domain, "twin", PAGE);
            byte[] expected = lastMapperOfAStableFrame(engine, guest, twin);
            armed.set(true);
            guest.breakSharing(0);
            assertBrokeOnto(engine, guest, expected);
        }
    }

    /**
     * Merges page 0 of the two guests, then writes the twin's page elsewhere: {@code guest}'s page is the
     * last mapping of a stable frame. Returns the bytes it reads.
     */
    private static byte[] lastMapperOfAStableFrame(DedupEngine engine, Guest guest, Guest twin) {
        byte[] bytes = block(9);
        guest.write(0, bytes, 0, PAGE);
        twin.write(0, bytes, 0, PAGE);
        engine.scanner().scanUntilStable(Scanner.DEFAULT_MAX_FULL_SCANS_TO_SETTLE);
        assertTrue(guest.isMerged(0) && twin.isMerged(0), "the twins merged");
        twin.write(0, block(5), 0, PAGE);
        assertEquals(1, engine.pool().table().refCount(guest.frameAt(0)), "the guest's page is the frame's last mapping");
        return bytes;
    }

    /**
     * The armed release was reached and counted, the page reads {@code expected} from a private frame, and
     * the engine is whole.
     */
    private void assertBrokeOnto(DedupEngine engine, Guest guest, byte[] expected) {
        assertFalse(armed.get(), "the release of the stable frame was reached");
        assertEquals(1, engine.counters().frameReleaseFailures(), "the failed release is counted");
        byte[] read = new byte[PAGE];
        guest.read(0, read, 0, PAGE);
        assertArrayEquals(expected, read, "the page reads its bytes, not the zero frame's");
        assertTrue(guest.isPrivate(0), "the page holds its new frame");
        EngineInvariants.assertConsistentWithHasherOf(context, engine, "after the break");
    }
}
