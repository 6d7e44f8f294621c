package io.samepage.core;

import java.util.SplittableRandom;

/**
 * A host that fails at random, seeded points: page mappings that refuse to be made, remaps, protections
 * and their undoing, dirty logs, and being taken down ({@link #mapping}), and a frame backing whose
 * releases fail ({@link #backing}). Every refusal throws before it changes anything, as the real calls
 * do (a failing mmap leaves the old mapping). Synchronized: the scanner's thread and the test's thread
 * may both call it.
 */
public final class FaultyHost {

    private final SplittableRandom random;
    private final int failOneIn;
    private long refusals;
    private RecordingMapping lastMapping;

    /** Fails about one call in {@code failOneIn}; 0 never fails. */
    public FaultyHost(long seed, int failOneIn) {
        this.random = new SplittableRandom(seed);
        this.failOneIn = failOneIn;
    }

    synchronized boolean fails() {
        boolean fail = failOneIn > 0 && random.nextInt(failOneIn) == 0;
        refusals += fail ? 1 : 0;
        return fail;
    }

    public synchronized long refusals() {
        return refusals;
    }

    /** What the host maps for the last mapping {@link #mapping} made: its frames and protections, page by page. */
    synchronized RecordingMapping lastMapping() {
        return lastMapping;
    }

    /** A factory of mappings that mirror like {@link RecordingMapping} and fail at random. */
    public PageMapping.Factory mapping() {
        return (first, pages) -> {
            if (fails()) {
                throw new IllegalStateException("mmap: Cannot allocate memory (injected, creating the mapping)");
            }
            RecordingMapping recorded = new RecordingMapping(first, pages);
            synchronized (this) {
                lastMapping = recorded;
            }
            return new PageMapping() {
                @Override
                public void map(int page, int frame, boolean writable) {
                    if (fails()) {
                        throw new IllegalStateException("mmap: Cannot allocate memory (injected)");
                    }
                    synchronized (recorded) {
                        recorded.map(page, frame, writable);
                    }
                }

                @Override
                public boolean writeProtect(int page) {
                    synchronized (recorded) {
                        if (fails()) {      // a spent budget says no; a failing mprotect throws
                            if (page % 2 == 0) {
                                return false;
                            }
                            throw new IllegalStateException("mprotect: Cannot allocate memory (injected, protecting)");
                        }
                        return recorded.writeProtect(page);
                    }
                }

                @Override
                public void unprotect(int page) {
                    synchronized (recorded) {
                        if (fails()) {
                            recorded.leftReadOnly[page] = true;
                            throw new IllegalStateException("mprotect: Cannot allocate memory (injected)");
                        }
                        recorded.unprotect(page);
                    }
                }

                @Override
                public boolean pagesWritten(long[] bitmap) {
                    synchronized (recorded) {
                        if (fails()) {
                            throw new IllegalStateException("KVM_GET_DIRTY_LOG: Bad address (injected)");
                        }
                        return recorded.pagesWritten(bitmap);
                    }
                }

                @Override
                public void unmapAll() {
                    if (fails()) {
                        throw new IllegalStateException("munmap: the VMM still holds the memory (injected)");
                    }
                    synchronized (recorded) {
                        recorded.unmapAll();
                    }
                }
            };
        };
    }

    /** Anonymous frames whose releases (madvise) and populates (madvise) fail at random. */
    public FrameBacking.Factory backing() {
        return frames -> new ForwardingBacking(frames) {
            @Override
            public void populate(int first, int count) {
                if (fails()) {
                    throw new IllegalStateException("madvise(MADV_POPULATE_WRITE): Cannot allocate memory (injected)");
                }
                super.populate(first, count);
            }

            @Override
            public void release(int frame) {
                if (fails()) {
                    throw new IllegalStateException("madvise: Invalid argument (injected)");
                }
                super.release(frame);
            }

            @Override
            public void release(int[] batch, int count) {
                if (fails()) {
                    throw new IllegalStateException("process_madvise: Invalid argument (injected)");
                }
                super.release(batch, count);
            }
        };
    }
}
