package io.samepage.core;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import io.samepage.hashing.Pages;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * A mapped guest whose creation fails once its mapping factory has been called gives its run of frames
 * back to the pool, and the frames read as zeros when they are taken again, whatever was written to them
 * meanwhile: a VMM's factory may map the run, let a VM run on it, and then fail (a later step of its own
 * set-up refused). Here the factory writes every frame of the run, as that VM would through its mapping,
 * and throws. Before, the run went back on trust that nothing had touched it, never-used again or onto
 * the cold list, both of which are handed out as reading zeros: the next guest on that run read the
 * failed one's bytes.
 */
class WrittenRunGivenBackTest {

    private static final int PAGE = Pages.PAGE_SIZE;
    private static final int PAGES = 16;

    /**
     * @param reused false: the run is the next never-used frames, and goes back never-used; true: it comes
     *               off the cold list (a destroyed guest's, a frame taken after it), and goes back there
     */
    @ParameterizedTest(name = "run reused from a destroyed guest: {0}")
    @ValueSource(booleans = {false, true})
    void aRunWrittenBeforeItsGuestFailedReadsAsZerosWhenTakenAgain(boolean reused) {
        EngineContext context = new EngineContext().poolBytes((4L * PAGES + 64) * PAGE).warmFrames(0);
        try (DedupEngine engine = DedupEngine.create(context.conclude())) {
            MergeDomain domain = engine.createDomain("d");
            if (reused) {
                Guest old = engine.createGuest(domain, "old", (long) PAGES * PAGE, RecordingMapping::new);
                engine.createGuest(domain, "stays", PAGE).write(0, new byte[] {1}, 0, 1);
                old.destroy();          // its run goes on the cold list; the frame after it stays taken
            }
            long before = engine.framesInUse();
            MemorySegment frames = engine.pool().memory();
            int[] run = {-1};
            DedupException refused = assertThrows(DedupException.class, () -> engine.createGuest(domain, "vm",
                    (long) PAGES * PAGE, (first, pages) -> {
                        run[0] = first;
                        for (int page = 0; page < pages; page++) {       // a VM writes the run it was given
                            frames.asSlice(FramePool.offsetOf(first + page), PAGE).fill((byte) 0x5A);
                        }
                        throw new IllegalStateException("KVM_SET_USER_MEMORY_REGION: injected refusal");
                    }));
            assertEquals(DedupException.Kind.HOST_REFUSED, refused.kind(), refused.getMessage());
            assertEquals(before, engine.framesInUse(), "the run went back to the pool");

            Guest next = engine.createGuest(domain, "next", (long) PAGES * PAGE, RecordingMapping::new);
            assertEquals(run[0], next.frameAt(0), "the next guest has the same run");
            byte[] read = new byte[PAGE];
            for (int page = 0; page < PAGES; page++) {
                next.read((long) page * PAGE, read, 0, PAGE);
                assertEquals(-1, java.util.Arrays.mismatch(read, new byte[PAGE]),
                        "page " + page + " of the next guest reads as zeros");
            }
            assertEquals(0, frames.get(ValueLayout.JAVA_BYTE, FramePool.offsetOf(run[0])), "the frames read as zeros");
        }
    }
}
