package io.samepage.core;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.samepage.hashing.Pages;
import org.junit.jupiter.api.Test;

/**
 * An embedder's mistakes, each refused with a {@link DedupException} of the documented kind and the
 * engine as it was (found by an audit of the public API; each failed on the code before the fix).
 */
class EngineMisuseTest {

    private static final int PAGE = Pages.PAGE_SIZE;

    /** A closed engine made guests and domains: their frames were in a pool that is gone. */
    @Test
    void aClosedEngineMakesNoGuestAndNoDomain() {
        DedupEngine engine = DedupEngine.create(new EngineContext().poolBytes(64L * PAGE).conclude());
        MergeDomain domain = engine.createDomain("d");
        engine.close();
        assertEquals(DedupException.Kind.DESTROYED,
                assertThrows(DedupException.class, () -> engine.createGuest(domain, "g", PAGE)).kind());
        assertEquals(DedupException.Kind.DESTROYED,
                assertThrows(DedupException.class, () -> engine.createDomain("d2")).kind());
        assertTrue(engine.guests().isEmpty());
    }

    /** A mapping factory that answers null made a software guest whose run of frames was never freed. */
    @Test
    void aMappingFactoryThatMakesNoMappingIsRefusedAndItsRunFreed() {
        try (DedupEngine engine = DedupEngine.create(new EngineContext().poolBytes(256L * PAGE).conclude())) {
            MergeDomain domain = engine.createDomain("d");
            long before = engine.framesInUse();
            DedupException refused = assertThrows(DedupException.class,
                    () -> engine.createGuest(domain, "m", 64L * PAGE, (first, pages) -> null));
            assertEquals(DedupException.Kind.INVALID_ARGUMENT, refused.kind());
            assertTrue(refused.getMessage().startsWith("guest m: "), refused.getMessage());
            assertEquals(before, engine.framesInUse(), "the run went back to the pool");
            assertTrue(engine.guests().isEmpty());
        }
    }

    /** "Later calls fail": markWritten, markAllWritten and access() still ran on a destroyed guest. */
    @Test
    void aDestroyedGuestTakesNoMoreCalls() {
        try (DedupEngine engine = DedupEngine.create(new EngineContext().poolBytes(64L * PAGE).conclude())) {
            Guest guest = engine.createGuest(engine.createDomain("d"), "g", 4L * PAGE);
            guest.destroy();
            assertEquals(DedupException.Kind.DESTROYED,
                    assertThrows(DedupException.class, () -> guest.markWritten(new long[] {1})).kind());
            assertEquals(DedupException.Kind.DESTROYED, assertThrows(DedupException.class, guest::markAllWritten).kind());
            assertEquals(DedupException.Kind.DESTROYED, assertThrows(DedupException.class, guest::access).kind());
        }
    }

    /**
     * A setting changed after conclude() reached the engine unchecked (a negative pool, a null backing),
     * and an engine that failed to start kept its pool mapped and used up its context.
     */
    @Test
    void aConcludedContextIsFixedAndAFailedStartLeavesNothing() {
        EngineContext concluded = new EngineContext().poolBytes(64L * PAGE).conclude();
        for (Runnable change : new Runnable[] {() -> concluded.poolBytes(-1), () -> concluded.frameBacking(null),
            () -> concluded.hashAlgorithm(null), () -> concluded.warmFrames(3), () -> concluded.hashSeed(1)}) {
            DedupException refused = assertThrows(DedupException.class, change::run);
            assertEquals(DedupException.Kind.INVALID_ARGUMENT, refused.kind());
            assertTrue(refused.getMessage().contains("this EngineContext has concluded"), refused.getMessage());
        }
        EngineContext failing = new EngineContext().poolBytes(64L * PAGE).frameBacking(frames -> {
            throw new IllegalStateException("no memfd here");
        }).conclude();
        assertThrows(IllegalStateException.class, () -> DedupEngine.create(failing));
        assertEquals("no memfd here", assertThrows(IllegalStateException.class, () -> DedupEngine.create(failing))
                .getMessage(), "a context whose engine could not start is not used up");

        // A failure after the pool exists (here the scanner's hasher) closes the pool: its region was left mapped.
        java.util.concurrent.atomic.AtomicInteger closes = new java.util.concurrent.atomic.AtomicInteger();
        io.samepage.hashing.PageHasher throwing = new io.samepage.hashing.PageHasher() {
            @Override
            public long hash(java.lang.foreign.MemorySegment memory, long offset) {
                throw new IllegalStateException("hasher broken");
            }

            @Override
            public io.samepage.hashing.HashAlgorithm algorithm() {
                return io.samepage.hashing.HashAlgorithm.defaultAlgorithm();
            }

            @Override
            public long seed() {
                return 0;
            }
        };
        EngineContext late = new EngineContext().poolBytes(64L * PAGE).customHasher(throwing)
                .frameBacking(frames -> new ForwardingBacking(FrameBacking.anonymous().create(frames)) {
                    @Override
                    public void close() {
                        closes.incrementAndGet();
                        super.close();
                    }
                }).conclude();
        assertEquals("hasher broken", assertThrows(IllegalStateException.class, () -> DedupEngine.create(late)).getMessage());
        assertEquals(1, closes.get(), "the pool made before the failure was closed");
    }

    /**
     * After close() has returned, a read of a page the access had cached threw IllegalStateException
     * ("Already closed") from the closed memory; only a read racing close may, every later one is
     * DESTROYED, as uncached reads and all writes were.
     */
    @Test
    void cachedReadsAfterCloseAreDestroyed() {
        DedupEngine engine = DedupEngine.create(new EngineContext().poolBytes(64L * PAGE).conclude());
        Guest guest = engine.createGuest(engine.createDomain("d"), "g", 4L * PAGE);
        guest.write(0, new byte[] {1, 2, 3, 4, 5, 6, 7, 8}, 0, 8);
        GuestAccess access = guest.access();
        assertEquals(0x0807060504030201L, access.readLong(0));
        engine.close();
        for (Runnable read : new Runnable[] {() -> access.readByte(0), () -> access.readShort(0),
            () -> access.readInt(0), () -> access.readLong(0)}) {
            assertEquals(DedupException.Kind.DESTROYED, assertThrows(DedupException.class, read::run).kind());
        }
    }
}
