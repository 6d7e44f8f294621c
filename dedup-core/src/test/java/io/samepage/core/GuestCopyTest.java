package io.samepage.core;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.samepage.core.DedupException.Kind;
import io.samepage.hashing.Pages;
import java.time.Duration;
import java.util.Arrays;
import java.util.Random;
import java.util.SplittableRandom;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;

/**
 * {@link Guest#copy}: as on arrays, within one guest and between two, at any length all or nothing
 * (a copy the pool cannot hold changes no byte and no count), its bad arguments refused naming the
 * culprit, and two copies in opposite directions between the same guests never wait for each other.
 */
class GuestCopyTest {

    private static final int PAGE = Pages.PAGE_SIZE;
    /** Copies each way in {@link #copiesInOppositeDirectionsBetweenTwoGuestsNeverWaitInACycle}. */
    private static final int ITERATIONS = 20_000;
    /** Not a timing assertion: many times a normal run of those copies, which takes well under a second. */
    private static final Duration BOUND = Duration.ofSeconds(30);

    private static DedupEngine engine(long poolPages) {
        return DedupEngine.create(context(poolPages));
    }

    private static EngineContext context(long poolPages) {
        return new EngineContext().poolBytes(poolPages * PAGE).warmFrames(0).conclude();
    }

    private static byte[] contents(Guest guest) {
        byte[] all = new byte[(int) guest.sizeBytes()];
        guest.read(0, all, 0, all.length);
        return all;
    }

    /** Takes every free frame of the pool but {@code free}, with a guest of its own that holds them. */
    private static void exhaust(DedupEngine engine, MergeDomain domain, int free) {
        Guest filler = engine.createGuest(domain, "filler", (long) engine.pool().capacityFrames() * PAGE);
        byte[] page = new byte[PAGE];
        Arrays.fill(page, (byte) 7);
        assertThrows(DedupException.class, () -> {
            for (long a = 0; a < filler.sizeBytes(); a += PAGE) {
                filler.write(a, page, 0, PAGE);
            }
        });
        filler.fill(0, (long) free * PAGE, (byte) 0);   // whole pages of 0 give their frames back
        assertEquals(free, engine.pool().framesAvailable());
    }

    /**
     * A copy of 4 MiB into a guest for which the pool has frames for less than half of it: it went 1 MiB
     * at a time, so the first two MiB were written before the third was refused. Now it is refused whole.
     */
    @Test
    void aCopyBetweenGuestsThatThePoolCannotHoldChangesNothing() {
        try (DedupEngine engine = engine(3072)) {
            MergeDomain domain = engine.createDomain("d");
            Guest src = engine.createGuest(domain, "src", 1024L * PAGE);
            Guest dst = engine.createGuest(domain, "dst", 1100L * PAGE);
            Random random = new Random(11);
            byte[] data = new byte[(int) src.sizeBytes()];
            random.nextBytes(data);
            src.write(0, data, 0, data.length);
            byte[] old = new byte[PAGE];
            for (int p = 0; p < dst.pageCount(); p += 8) {      // every 8th page private: the copy needs 7 frames in 8
                random.nextBytes(old);
                dst.write((long) p * PAGE + 3, old, 0, PAGE - 3);
            }
            exhaust(engine, domain, 500);
            byte[] srcBefore = contents(src);
            byte[] dstBefore = contents(dst);
            int inUse = engine.pool().framesInUse();
            int available = engine.pool().framesAvailable();

            DedupException refused = assertThrows(DedupException.class, () -> src.copy(0, dst, 5L * PAGE + 1, 4L << 20));

            assertEquals(Kind.POOL_EXHAUSTED, refused.kind(), refused.getMessage());
            assertArrayEquals(dstBefore, contents(dst), "the destination is as it was, every byte");
            assertArrayEquals(srcBefore, contents(src), "the source is as it was");
            assertEquals(inUse, engine.pool().framesInUse(), "frames in use");
            assertEquals(available, engine.pool().framesAvailable(), "frames available");
            assertTrue(refused.getMessage().startsWith("host frame pool exhausted: guest dst needs 897 free frames to copy "
                    + (4 << 20) + " bytes from guest src at 0x0 to 0x5001, 500 are free; nothing was written"),
                    refused.getMessage());
        }
    }

    /** The same within one guest: an overlapping copy goes backwards, so its last MiB was written first. */
    @Test
    void anOverlappingCopyWithinAGuestThatThePoolCannotHoldChangesNothing() {
        try (DedupEngine engine = engine(2048)) {
            MergeDomain domain = engine.createDomain("d");
            Guest guest = engine.createGuest(domain, "g", 1024L * PAGE);
            byte[] data = new byte[600 * PAGE];
            new Random(12).nextBytes(data);
            guest.write(0, data, 0, data.length);
            // Onto pages 300..900: the 301 past page 599 need a frame each, the last MiB (copied first) 257 of them.
            exhaust(engine, domain, 280);
            byte[] before = contents(guest);
            int inUse = engine.pool().framesInUse();

            DedupException refused = assertThrows(DedupException.class, () -> guest.copy(0, guest, 300L * PAGE + 9, 600L * PAGE));

            assertEquals(Kind.POOL_EXHAUSTED, refused.kind(), refused.getMessage());
            assertArrayEquals(before, contents(guest), "every byte as it was");
            assertEquals(inUse, engine.pool().framesInUse(), "frames in use");
            assertEquals(280, engine.pool().framesAvailable(), "frames available");
            assertTrue(refused.getMessage().contains("needs 301 free frames"), refused.getMessage());
        }
    }

    /** Copies within a guest (both directions, overlapping), between guests, over merged pages: as on arrays. */
    @Test
    void copiesActAsOnArraysOverMergedPages() {
        EngineContext context = context(4096);
        try (DedupEngine engine = DedupEngine.create(context)) {
            MergeDomain domain = engine.createDomain("d");
            Guest a = engine.createGuest(domain, "a", 300L * PAGE);
            Guest b = engine.createGuest(domain, "b", 40L * PAGE);
            Guest[] guests = {a, b};
            byte[][] models = {new byte[(int) a.sizeBytes()], new byte[(int) b.sizeBytes()]};
            Random random = new Random(13);
            byte[] page = new byte[PAGE];
            for (int i = 0; i < 2; i++) {
                for (int p = 0; p < guests[i].pageCount(); p += 1 + random.nextInt(3)) {
                    Arrays.fill(page, (byte) random.nextInt(4));         // few contents: many pages merge
                    guests[i].write((long) p * PAGE, page, 0, PAGE);
                    System.arraycopy(page, 0, models[i], p * PAGE, PAGE);
                }
            }
            for (int op = 0; op < 400; op++) {
                if (op % 50 == 0) {
                    engine.scanner().scanUntilStable(8);
                }
                int s = random.nextInt(2);
                int d = random.nextInt(2);
                int size = Math.min(models[s].length, models[d].length);
                int length = random.nextInt(4) == 0 ? random.nextInt(16) : random.nextInt(size + 1);
                int from = random.nextInt(models[s].length - length + 1);
                int to = s == d && random.nextBoolean()
                        ? Math.clamp(from + random.nextInt(2 * PAGE + 1) - PAGE, 0, models[d].length - length)
                        : random.nextInt(models[d].length - length + 1);
                guests[s].copy(from, guests[d], to, length);
                System.arraycopy(models[s], from, models[d], to, length);
                String what = "op " + op + ": copy " + guests[s].name() + " @" + from + " -> " + guests[d].name() + " @" + to
                        + " +" + length;
                assertArrayEquals(models[d], contents(guests[d]), what);
                assertArrayEquals(models[s], contents(guests[s]), what);
            }
            EngineInvariants.assertConsistentWithHasherOf(context, engine, "after the copies");
        }
    }

    /** A copy to a guest of another engine read one pool and wrote the other; it is refused instead. */
    @Test
    void aCopyToAnotherEnginesGuestIsRefused() {
        try (DedupEngine engine = engine(64); DedupEngine other = engine(64)) {
            Guest src = engine.createGuest(engine.createDomain("d"), "src", 2L * PAGE);
            Guest dst = other.createGuest(other.createDomain("d"), "dst", 2L * PAGE);
            src.fill(0, 2L * PAGE, (byte) 5);
            int inUse = other.pool().framesInUse();

            DedupException refused = assertThrows(DedupException.class, () -> src.copy(0, dst, 0, PAGE));

            assertEquals(Kind.INVALID_ARGUMENT, refused.kind());
            assertEquals("guest dst belongs to another engine than guest src: a copy goes between guests of one "
                    + "engine's pool; nothing was copied", refused.getMessage());
            assertArrayEquals(new byte[2 * PAGE], contents(dst));
            assertEquals(inUse, other.pool().framesInUse());
        }
    }

    @Test
    void aRangeOutsideItsGuestIsRefusedNamingThatGuest() {
        try (DedupEngine engine = engine(64)) {
            MergeDomain domain = engine.createDomain("d");
            Guest src = engine.createGuest(domain, "src", 4L * PAGE);
            Guest dst = engine.createGuest(domain, "dst", 2L * PAGE);
            src.fill(0, 4L * PAGE, (byte) 1);
            assertRefused(Kind.INVALID_ARGUMENT, "guest dst: range [0x1, +8192) is outside its 8192 bytes",
                    () -> src.copy(0, dst, 1, 2L * PAGE));
            assertRefused(Kind.INVALID_ARGUMENT, "guest src: range [0x3001, +4096) is outside its 16384 bytes",
                    () -> src.copy(3L * PAGE + 1, dst, 0, PAGE));
            assertRefused(Kind.INVALID_ARGUMENT, "guest src: range [0x0, +-1) is outside its 16384 bytes",
                    () -> src.copy(0, dst, 0, -1));
            assertRefused(Kind.INVALID_ARGUMENT, "guest src: range [0x2001, +8192) is outside its 16384 bytes",
                    () -> src.copy(2L * PAGE + 1, src, 0, 2L * PAGE));
            assertRefused(Kind.INVALID_ARGUMENT, "guest src: range [0x4001, +0) is outside its 16384 bytes",
                    () -> src.copy(4L * PAGE + 1, dst, 0, 0));
            assertArrayEquals(new byte[2 * PAGE], contents(dst));
        }
    }

    /** A copy of nothing, at either end of a guest, changes nothing and takes no frame. */
    @Test
    void aCopyOfNoBytesChangesNothing() {
        try (DedupEngine engine = engine(64)) {
            MergeDomain domain = engine.createDomain("d");
            Guest src = engine.createGuest(domain, "src", 2L * PAGE);
            Guest dst = engine.createGuest(domain, "dst", 2L * PAGE);
            src.fill(0, 2L * PAGE, (byte) 3);
            int inUse = engine.pool().framesInUse();
            src.copy(0, dst, 2L * PAGE, 0);
            src.copy(2L * PAGE, dst, 0, 0);
            src.copy(5, src, 6, 0);
            assertArrayEquals(new byte[2 * PAGE], contents(dst));
            assertEquals(inUse, engine.pool().framesInUse());
        }
    }

    @Test
    void aCopyFromOrToADestroyedGuestIsRefused() {
        try (DedupEngine engine = engine(64)) {
            MergeDomain domain = engine.createDomain("d");
            Guest live = engine.createGuest(domain, "live", 2L * PAGE);
            Guest gone = engine.createGuest(domain, "gone", 2L * PAGE);
            gone.destroy();
            int inUse = engine.pool().framesInUse();
            assertRefused(Kind.DESTROYED, "guest gone has been destroyed", () -> live.copy(0, gone, 0, PAGE));
            assertRefused(Kind.DESTROYED, "guest gone has been destroyed", () -> gone.copy(0, live, 0, PAGE));
            assertRefused(Kind.DESTROYED, "guest gone has been destroyed", () -> gone.copy(0, gone, 1, PAGE));
            assertArrayEquals(new byte[2 * PAGE], contents(live));
            assertEquals(inUse, engine.pool().framesInUse());
        }
    }

    /**
     * Copies {@code a -> b} on one thread and {@code b -> a} on another, over one-page guests (one stripe
     * each, which every copy holds both of): each takes the stripes in the engine's creation order, so
     * neither waits for the other in a cycle. Bounded by iterations; a deadlock fails with every stack.
     */
    @Test
    void copiesInOppositeDirectionsBetweenTwoGuestsNeverWaitInACycle() throws Exception {
        EngineContext context = context(64);
        DedupEngine engine = DedupEngine.create(context);
        boolean ended = false;
        try {
            MergeDomain domain = engine.createDomain("d");
            Guest a = engine.createGuest(domain, "a", PAGE);
            Guest b = engine.createGuest(domain, "b", PAGE);
            a.fill(0, PAGE, (byte) 1);
            b.fill(0, PAGE, (byte) 2);
            ExecutorService threads = Executors.newFixedThreadPool(2, r -> Thread.ofPlatform().daemon().unstarted(r));
            try {
                Future<Integer> ab = threads.submit(() -> copies(a, b, new SplittableRandom(1)));
                Future<Integer> ba = threads.submit(() -> copies(b, a, new SplittableRandom(2)));
                assertEquals(ITERATIONS, Watchdog.await(ab, "the copies a -> b", BOUND));
                assertEquals(ITERATIONS, Watchdog.await(ba, "the copies b -> a", BOUND));
                ended = true;
            } finally {
                threads.shutdownNow();
            }
            for (Guest g : new Guest[] {a, b}) {
                for (byte value : contents(g)) {
                    assertTrue(value == 1 || value == 2, g + " holds a byte no guest held: " + value);
                }
            }
            EngineInvariants.assertConsistentWithHasherOf(context, engine, "after the opposite copies");
        } finally {
            if (ended) {
                engine.close();     // a deadlocked thread would make close() wait for ever
            }
        }
    }

    /** {@link #ITERATIONS} copies of up to a page from {@code src} to {@code dst}; the number done. */
    private static int copies(Guest src, Guest dst, SplittableRandom random) {
        int done = 0;
        for (int i = 0; i < ITERATIONS; i++) {
            int length = 1 + random.nextInt(PAGE);
            src.copy(random.nextInt(PAGE - length + 1), dst, random.nextInt(PAGE - length + 1), length);
            done++;
        }
        return done;
    }

    private static void assertRefused(Kind kind, String message, Executable copy) {
        DedupException refused = assertThrows(DedupException.class, copy);
        assertEquals(kind, refused.kind(), refused.getMessage());
        assertEquals(message, refused.getMessage());
    }
}
