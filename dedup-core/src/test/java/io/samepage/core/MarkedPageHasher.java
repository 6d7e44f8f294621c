package io.samepage.core;

import io.samepage.hashing.HashAlgorithm;
import io.samepage.hashing.PageHasher;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * The real hasher, except that it throws {@link InjectedError} once, when armed, for a page whose first
 * eight bytes are {@code marker}: one page's visit fails, as a faulting read of it would. Thread safe:
 * scanner threads hash side by side, and one of them takes the armed throw.
 */
record MarkedPageHasher(PageHasher real, long marker, AtomicBoolean armed) implements PageHasher {

    @Override
    public long hash(MemorySegment memory, long offset) {
        if (memory.get(ValueLayout.JAVA_LONG_UNALIGNED, offset) == marker && armed.compareAndSet(true, false)) {
            throw new InjectedError();
        }
        return real.hash(memory, offset);
    }

    @Override
    public HashAlgorithm algorithm() {
        return real.algorithm();
    }

    @Override
    public long seed() {
        return real.seed();
    }

    /** What the armed hash throws. */
    static final class InjectedError extends Error {
        InjectedError() {
            super("injected into the hash of one page");
        }
    }
}
