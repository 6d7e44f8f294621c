package io.samepage.core;

import io.samepage.hashing.Pages;
import java.util.Arrays;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * The set-up the tests of a frame release that fails share ({@link FramePool}'s "Release failures"): an
 * engine context whose frame backing throws an {@link InternalError} from its next release once a flag
 * is set, and the pages those tests write. A test sets the flag just before the step whose release must
 * fail; the release that throws clears it, so a flag found cleared says that release was reached.
 */
final class FailingRelease {

    private static final int PAGE = Pages.PAGE_SIZE;

    private FailingRelease() {
    }

    /**
     * A context (a pool of 4 MiB, hash seed 3) whose backing's release of one frame
     * ({@link FrameBacking#release(int)}) throws once {@code armed} is set. No frame is kept warm: every
     * freed frame's memory is released, so the armed release is reached.
     */
    static EngineContext context(AtomicBoolean armed) {
        return context(armed, false);
    }

    /** As {@link #context}, and a batch's release ({@link FrameBacking#release(int[], int)}) throws alike. */
    static EngineContext contextFailingBatchesToo(AtomicBoolean armed) {
        return context(armed, true);
    }

    private static EngineContext context(AtomicBoolean armed, boolean batches) {
        return new EngineContext().poolBytes(4L << 20).hashSeed(3).warmFrames(0)
                .frameBacking(frames -> new ForwardingBacking(frames) {
                    @Override
                    public void release(int frame) {
                        if (armed.getAndSet(false)) {
                            throw new InternalError("injected: madvise of frame " + frame);
                        }
                        super.release(frame);
                    }

                    @Override
                    public void release(int[] frames, int count) {
                        if (batches && armed.getAndSet(false)) {
                            throw new InternalError("injected: process_madvise of " + count + " frames");
                        }
                        super.release(frames, count);
                    }
                });
    }

    /** A page of {@code tag} bytes whose last byte is 1, so never all zeros. */
    static byte[] block(int tag) {
        byte[] bytes = new byte[PAGE];
        Arrays.fill(bytes, (byte) tag);
        bytes[PAGE - 1] = 1;
        return bytes;
    }
}
