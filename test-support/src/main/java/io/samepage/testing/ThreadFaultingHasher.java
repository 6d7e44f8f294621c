package io.samepage.testing;

import io.samepage.hashing.HashAlgorithm;
import io.samepage.hashing.PageHasher;
import java.lang.foreign.MemorySegment;

/**
 * The real hasher (NH), except on the thread of one name ({@code samepage-scanner}): there every call
 * throws an {@link InternalError}, as a faulting page read would. The engine's own setup hashes on the
 * thread that creates it, so an engine, a daemon or a bench starts, and its scanner dies on its first
 * hash, whenever that comes. Give it to {@code EngineContext.customHasher}.
 */
public final class ThreadFaultingHasher implements PageHasher {

    /** The message of the error it throws. */
    public static final String MESSAGE = "a fault occurred in an unsafe memory access operation (test)";

    private final PageHasher real = HashAlgorithm.NH.newHasher(1);
    private final String thread;

    /** Throws on the thread named {@code thread}. */
    public ThreadFaultingHasher(String thread) {
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
