package io.samepage.daemon;

import io.samepage.hashing.HashAlgorithm;
import io.samepage.hashing.PageHasher;
import java.lang.foreign.MemorySegment;

/**
 * The real hasher, except on the thread of one name ({@code samepage-scanner}): there every call throws an
 * {@link InternalError}, as a faulting page read would. The engine's own setup hashes on the launching
 * thread, so a daemon launches, and its scanner dies on its first hash, whenever that comes.
 */
final class FaultingHasher implements PageHasher {

    static final String MESSAGE = "a fault occurred in an unsafe memory access operation (test)";

    private final PageHasher real = HashAlgorithm.NH.newHasher(1);
    private final String thread;

    FaultingHasher(String thread) {
        this.thread = thread;
    }

    @Override
    public long hash(MemorySegment memory, long offset) {
        if (Thread.currentThread().getName().equals(thread)) {
            throw new InternalError(MESSAGE);
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
}
