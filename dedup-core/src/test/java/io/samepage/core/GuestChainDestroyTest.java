package io.samepage.core;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.samepage.core.DedupException.Kind;
import io.samepage.hashing.Pages;
import java.util.Arrays;
import java.util.SplittableRandom;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;

/**
 * A {@link GuestChain} with a destroyed guest, or of a closed engine: an operation that touches that
 * guest is refused ({@link Kind#DESTROYED}) and writes nothing, in the other guests either; it never
 * writes the frames the destroyed guest gave back, which a newer guest may hold by then.
 */
class GuestChainDestroyTest {

    private static final int PAGE = Pages.PAGE_SIZE;
    private static final long SEED = 20_260_303;

    private static DedupEngine engine() {
        EngineContext context = new EngineContext().poolBytes(4L << 20).hashSeed(SEED);
        context.knobs().useZeroPages(true);
        return DedupEngine.create(context.conclude());
    }

    private static byte[] read(Guest guest) {
        byte[] bytes = new byte[(int) guest.sizeBytes()];
        guest.read(0, bytes, 0, bytes.length);
        return bytes;
    }

    private static byte[] pattern(int length, int value) {
        byte[] bytes = new byte[length];
        Arrays.fill(bytes, (byte) value);
        return bytes;
    }

    @Test
    void anOperationTouchingADestroyedGuestIsRefusedWritingNothingAnywhere() {
        try (DedupEngine engine = engine()) {
            MergeDomain domain = engine.createDomain("d");
            Guest a = engine.createGuest(domain, "a", 2 * PAGE);
            Guest b = engine.createGuest(domain, "b", 2 * PAGE);
            Guest c = engine.createGuest(domain, "c", 2 * PAGE);
            GuestChain abc = new GuestChain(a, b, c);
            GuestChain cb = new GuestChain(c, b);
            byte[] all = new byte[6 * PAGE];
            new SplittableRandom(SEED).nextBytes(all);
            abc.write(0, all, 0, all.length);
            b.destroy();
            Guest d = engine.createGuest(domain, "d", 2 * PAGE);     // takes the frames b gave back
            d.write(0, pattern(2 * PAGE, 0x77), 0, 2 * PAGE);
            byte[] aBefore = read(a);
            byte[] cBefore = read(c);
            long inUse = engine.framesInUse();
            int available = engine.pool().framesAvailable();
            byte[] ones = pattern(4 * PAGE, 1);
            Executable[] touchingB = {
                () -> abc.write(PAGE, ones, 0, 4 * PAGE),           // across all three
                () -> abc.write(2 * PAGE + 5, ones, 0, 100),        // within b alone
                () -> abc.fill(PAGE + 1, 2 * PAGE, (byte) 0),       // a and b, b's first page whole
                () -> abc.fill(3 * PAGE, 2 * PAGE, (byte) 3),       // b and c
                () -> abc.copy(0, 2 * PAGE, PAGE),                  // into a from b
                () -> abc.copy(PAGE, 3 * PAGE, 3 * PAGE),           // overlapping, through b
                () -> cb.copy(0, 2 * PAGE, 2 * PAGE),               // into c from b, chain in another order
                () -> cb.fill(PAGE, 2 * PAGE, (byte) 0),
            };
            for (int i = 0; i < touchingB.length; i++) {
                DedupException refused = assertThrows(DedupException.class, touchingB[i], "operation " + i);
                assertEquals(Kind.DESTROYED, refused.kind(), "operation " + i + ": " + refused);
                assertArrayEquals(aBefore, read(a), "operation " + i + " wrote nothing in a");
                assertArrayEquals(cBefore, read(c), "operation " + i + " wrote nothing in c");
                assertArrayEquals(pattern(2 * PAGE, 0x77), read(d), "operation " + i + " wrote no frame b gave back");
                assertEquals(inUse, engine.framesInUse(), "operation " + i + " took no frame");
                assertEquals(available, engine.pool().framesAvailable(), "operation " + i + " kept no reservation");
            }
            abc.copy(4 * PAGE + 9, 3, PAGE);        // from a into c: touches nothing of b, so goes through
            System.arraycopy(aBefore, 3, cBefore, 9, PAGE);
            assertArrayEquals(aBefore, read(a));
            assertArrayEquals(cBefore, read(c), "a copy from a into c, not through b, still copies");
        }
    }

    @Test
    void aChainOfAClosedEngineIsRefused() {
        DedupEngine engine = engine();
        MergeDomain domain = engine.createDomain("d");
        Guest a = engine.createGuest(domain, "a", PAGE);
        Guest b = engine.createGuest(domain, "b", 2 * PAGE);
        GuestChain chain = new GuestChain(a, b);
        chain.fill(0, 3 * PAGE, (byte) 9);
        engine.close();
        Executable[] ops = {
            () -> chain.write(PAGE - 3, new byte[8], 0, 8),
            () -> chain.write(PAGE + 3, new byte[8], 0, 8),
            () -> chain.fill(0, 3 * PAGE, (byte) 0),
            () -> chain.copy(0, 2 * PAGE, PAGE),
        };
        for (Executable op : ops) {
            assertEquals(Kind.DESTROYED, assertThrows(DedupException.class, op).kind());
        }
    }

    /**
     * One thread writes, fills and copies across {@code a, b, c} (and {@code c, b, a}) with the scanner
     * running, while another destroys {@code b} and then writes a new guest, which may take b's frames.
     * Every operation is whole or refused: {@code a} and {@code c} read as the model of the operations
     * that went through, the new guest as it was written, and the frames go back once all is destroyed.
     */
    @Test
    void aDestroyWhileChainsWriteLeavesEachOperationWholeOrRefused() throws Exception {
        try (DedupEngine engine = engine()) {
            MergeDomain domain = engine.createDomain("d");
            long inUse = engine.framesInUse();
            int available = engine.pool().framesAvailable();
            Guest a = engine.createGuest(domain, "a", 2 * PAGE);
            Guest b = engine.createGuest(domain, "b", PAGE);
            Guest c = engine.createGuest(domain, "c", 2 * PAGE);
            GuestChain abc = new GuestChain(a, b, c);
            GuestChain cba = new GuestChain(c, b, a);
            byte[][] model = {new byte[2 * PAGE], new byte[PAGE], new byte[2 * PAGE]};
            AtomicLong done = new AtomicLong();
            AtomicBoolean working = new AtomicBoolean(true);
            ExecutorService threads = Executors.newFixedThreadPool(3, r -> Thread.ofPlatform().daemon().unstarted(r));
            try {
                Future<long[]> writer = threads.submit(() -> writeAcross(abc, cba, new Guest[] {a, b, c}, model, done));
                Future<Guest> destroyer = threads.submit(() -> {
                    while (done.get() < 3000) {
                        Thread.sleep(1);
                    }
                    b.destroy();
                    Guest e = engine.createGuest(domain, "e", 4 * PAGE);
                    e.write(0, pattern(4 * PAGE, 0x5A), 0, 4 * PAGE);
                    return e;
                });
                Future<?> scanner = threads.submit(() -> {
                    while (working.get()) {
                        engine.scanner().scanBatch(8);
                    }
                    return null;
                });
                long[] outcomes = Watchdog.await(writer, "the chain writer (seed " + SEED + ")");
                Guest e = Watchdog.await(destroyer, "the destroyer");
                working.set(false);
                Watchdog.await(scanner, "the scanner");
                assertTrue(outcomes[0] > 0 && outcomes[1] > 0, outcomes[0] + " operations went through, "
                        + outcomes[1] + " were refused");
                assertArrayEquals(model[0], read(a), "a (seed " + SEED + ")");
                assertArrayEquals(model[2], read(c), "c (seed " + SEED + ")");
                assertArrayEquals(pattern(4 * PAGE, 0x5A), read(e), "the guest made after b's destroy");
                EngineInvariants.assertConsistent(engine, null, "after the run (seed " + SEED + ")");
                a.destroy();
                c.destroy();
                e.destroy();
                assertEquals(inUse, engine.framesInUse(), "frames in use once every guest is destroyed");
                assertEquals(available, engine.pool().framesAvailable(), "frames available once every guest is destroyed");
            } finally {
                working.set(false);
                threads.shutdownNow();
            }
        }
    }

    /** Operations across b until 2000 were refused (at most 50000); returns those that went through and those refused. */
    private static long[] writeAcross(GuestChain abc, GuestChain cba, Guest[] guests, byte[][] model, AtomicLong done) {
        SplittableRandom rnd = new SplittableRandom(SEED);
        long refused = 0;
        long through = 0;
        for (long op = 0; refused < 2000 && op < 50_000; op++) {
            boolean reversed = rnd.nextBoolean();
            GuestChain chain = reversed ? cba : abc;
            int[] order = reversed ? new int[] {2, 1, 0} : new int[] {0, 1, 2};
            int from = 2 * PAGE - 1 - rnd.nextInt(2 * PAGE);
            int length = 3 * PAGE + 2 - from + rnd.nextInt(2 * PAGE - 1);
            byte[] whole = flatten(model, order);
            byte[] after = whole.clone();
            try {
                switch (rnd.nextInt(3)) {
                    case 0 -> {
                        byte[] bytes = new byte[length];
                        rnd.nextBytes(bytes);
                        chain.write(from, bytes, 0, length);
                        System.arraycopy(bytes, 0, after, from, length);
                    }
                    case 1 -> {
                        byte value = (byte) rnd.nextInt(2);
                        chain.fill(from, length, value);
                        Arrays.fill(after, from, from + length, value);
                    }
                    default -> {
                        int src = rnd.nextInt(whole.length - length + 1);
                        chain.copy(from, src, length);
                        System.arraycopy(whole, src, after, from, length);
                    }
                }
                unflatten(after, model, order);
                through++;
            } catch (DedupException e) {
                assertEquals(Kind.DESTROYED, e.kind(), "op " + op + " (seed " + SEED + "): " + e);
                assertTrue(guests[1].isDestroyed(), "op " + op + " refused as destroyed before b was");
                refused++;
            }
            assertArrayEquals(model[0], read(guests[0]), "a after op " + op + " (seed " + SEED + ")");
            assertArrayEquals(model[2], read(guests[2]), "c after op " + op + " (seed " + SEED + ")");
            done.incrementAndGet();
        }
        return new long[] {through, refused};
    }

    private static byte[] flatten(byte[][] model, int[] order) {
        byte[] whole = new byte[5 * PAGE];
        int at = 0;
        for (int g : order) {
            System.arraycopy(model[g], 0, whole, at, model[g].length);
            at += model[g].length;
        }
        return whole;
    }

    private static void unflatten(byte[] whole, byte[][] model, int[] order) {
        int at = 0;
        for (int g : order) {
            System.arraycopy(whole, at, model[g], 0, model[g].length);
            at += model[g].length;
        }
    }
}
