package io.samepage.core;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.samepage.core.DedupException.Kind;
import java.lang.management.ManagementFactory;
import java.util.Arrays;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** {@link GuestChain}: writes, fills and copies across guests, as on one array, and all or nothing. */
class GuestChainTest {

    private static final int PAGE = 4096;

    private static DedupEngine engine(long mib) {
        return DedupEngine.create(new EngineContext().poolBytes(mib << 20).conclude());
    }

    private static byte[] contents(GuestChain chain, Guest... guests) {
        byte[] all = new byte[(int) chain.sizeBytes()];
        int at = 0;
        for (Guest g : guests) {
            g.read(0, all, at, (int) g.sizeBytes());
            at += (int) g.sizeBytes();
        }
        return all;
    }

    @Test
    void writesFillsAndCopiesAcrossGuestsActAsOnOneArray() {
        try (DedupEngine engine = engine(16)) {
            MergeDomain domain = engine.createDomain("chain");
            Guest a = engine.createGuest(domain, "a", 3 * PAGE);
            Guest b = engine.createGuest(domain, "b", 5 * PAGE);
            Guest c = engine.createGuest(domain, "c", 2 * PAGE);
            GuestChain chain = new GuestChain(a, b, c);
            byte[] model = new byte[10 * PAGE];
            assertEquals(model.length, chain.sizeBytes());
            Random r = new Random(7);
            for (int op = 0; op < 600; op++) {
                int length = r.nextInt(4) == 0 ? r.nextInt(16) : r.nextInt(3 * PAGE);
                int at = r.nextInt(model.length - length + 1);
                switch (r.nextInt(3)) {
                    case 0 -> {
                        byte[] data = new byte[length + 3];
                        r.nextBytes(data);
                        chain.write(at, data, 3, length);
                        System.arraycopy(data, 3, model, at, length);
                    }
                    case 1 -> {
                        byte value = r.nextInt(3) == 0 ? 0 : (byte) r.nextInt();
                        chain.fill(at, length, value);
                        Arrays.fill(model, at, at + length, value);
                    }
                    default -> {
                        int from = r.nextBoolean() ? r.nextInt(model.length - length + 1)
                                : Math.clamp(at + r.nextInt(2 * PAGE) - PAGE, 0, model.length - length);
                        chain.copy(at, from, length);
                        System.arraycopy(model, from, model, at, length);
                    }
                }
                assertArrayEquals(model, contents(chain, a, b, c), "after op " + op);
            }
        }
    }

    /** A pool of 4 MiB, every frame but {@code free} taken by a guest of its own. */
    private static Guest exhaust(DedupEngine engine, MergeDomain domain, int free) {
        Guest filler = engine.createGuest(domain, "filler", 8L << 20);
        byte[] page = new byte[PAGE];
        Arrays.fill(page, (byte) 7);
        assertThrows(DedupException.class, () -> {
            for (long a = 0; a < filler.sizeBytes(); a += PAGE) {
                filler.write(a, page, 0, PAGE);
            }
        });
        filler.fill(0, (long) free * PAGE, (byte) 0);
        return filler;
    }

    @Test
    void aWriteFillOrCopyThatNeedsMoreFramesThanAreFreeChangesNothing() {
        try (DedupEngine engine = engine(4)) {
            MergeDomain domain = engine.createDomain("refused");
            Guest a = engine.createGuest(domain, "a", 64 * PAGE);
            Guest b = engine.createGuest(domain, "b", 64 * PAGE);
            GuestChain chain = new GuestChain(a, b);
            byte[] before = new byte[128 * PAGE];
            new Random(3).nextBytes(before);
            Arrays.fill(before, 60 * PAGE, 70 * PAGE, (byte) 0);      // never written: the zero frame
            chain.write(0, before, 0, 60 * PAGE);
            chain.write(70 * PAGE, before, 70 * PAGE, 58 * PAGE);
            exhaust(engine, domain, 5);
            int free = engine.pool().framesAvailable();
            byte[] data = new byte[10 * PAGE];
            Arrays.fill(data, (byte) 0x55);
            // Each needs the 10 frames of [60, 70) pages; 5 are free: the first 5 pages' frames would do.
            DedupException w = assertThrows(DedupException.class, () -> chain.write(60 * PAGE, data, 0, data.length));
            DedupException f = assertThrows(DedupException.class, () -> chain.fill(58 * PAGE, 14 * PAGE, (byte) 1));
            DedupException c = assertThrows(DedupException.class, () -> chain.copy(58 * PAGE, 0, 14 * PAGE));
            DedupException back = assertThrows(DedupException.class, () -> chain.copy(60 * PAGE + 1, 60 * PAGE - 7, 12 * PAGE));
            for (DedupException refused : new DedupException[] {w, f, c, back}) {
                assertEquals(Kind.POOL_EXHAUSTED, refused.kind());
                assertTrue(refused.getMessage().contains("needs 10 free frames") && refused.getMessage().contains("nothing was written"),
                        refused.getMessage());
            }
            assertArrayEquals(before, contents(chain, a, b), "nothing changed");
            assertEquals(free, engine.pool().framesAvailable(), "every frame reserved went back");
            chain.fill(0, 128 * PAGE, (byte) 0);        // needs no frame: every page gives its own back
            assertArrayEquals(new byte[128 * PAGE], contents(chain, a, b));
            assertEquals(free + 118, engine.pool().framesAvailable());
        }
    }

    @Test
    void aChainIsOfDistinctGuestsOfOneEngine() {
        try (DedupEngine engine = engine(4); DedupEngine other = engine(4)) {
            Guest a = engine.createGuest(engine.createDomain("d"), "a", PAGE);
            Guest elsewhere = other.createGuest(other.createDomain("d"), "x", PAGE);
            assertThrows(IllegalArgumentException.class, GuestChain::new);
            assertThrows(IllegalArgumentException.class, () -> new GuestChain(a, a));
            assertThrows(IllegalArgumentException.class, () -> new GuestChain(a, elsewhere));
            GuestChain chain = new GuestChain(a);
            DedupException outside = assertThrows(DedupException.class, () -> chain.fill(PAGE - 1, 2, (byte) 1));
            assertEquals(Kind.INVALID_ARGUMENT, outside.kind());
            assertEquals(Kind.INVALID_ARGUMENT, assertThrows(DedupException.class, () -> chain.copy(0, 1, PAGE)).kind());
        }
    }

    /**
     * A copy onto itself moves nothing, so it breaks no sharing and takes no frame: a WebAssembly
     * {@code memory.copy} with equal addresses is a no-op. It broke every merged page it covered.
     */
    @Test
    void aCopyOntoItselfLeavesMergedPagesMerged() {
        try (DedupEngine engine = engine(16)) {
            MergeDomain domain = engine.createDomain("chain");
            Guest a = engine.createGuest(domain, "a", 2 * PAGE);
            Guest b = engine.createGuest(domain, "b", 2 * PAGE);
            byte[] same = new byte[2 * PAGE];
            new Random(11).nextBytes(same);
            a.write(0, same, 0, same.length);
            b.write(0, same, 0, same.length);
            engine.scanner().scanUntilStable(8);
            long sharing = engine.counters().pagesSharing();
            assertEquals(2, sharing, "both of b's pages share a's frames");
            GuestChain chain = new GuestChain(a, b);
            chain.copy(PAGE / 2, PAGE / 2, 3 * PAGE);
            assertEquals(sharing, engine.counters().pagesSharing(), "no page was broken out of its sharing");
            assertArrayEquals(same, contents(new GuestChain(a), a));
        }
    }

    /**
     * A copy between two far parts of one guest locks their pages' stripes, not every stripe between
     * them: it completes while another thread holds the stripe of a page in between. It took every
     * stripe from the lower page to the higher, so it waited for that thread.
     */
    @Test
    void aCopyBetweenFarPagesOfOneGuestLeavesTheStripesBetweenThemFree() throws InterruptedException {
        try (DedupEngine engine = engine(16)) {
            MergeDomain domain = engine.createDomain("chain");
            Guest g = engine.createGuest(domain, "g", 512 * PAGE);
            byte[] bytes = new byte[2 * PAGE];
            new Random(13).nextBytes(bytes);
            g.write(0, bytes, 0, bytes.length);
            GuestChain chain = new GuestChain(g);
            java.util.concurrent.locks.StampedLock between = g.stripeOf(250);
            assertTrue(between != g.stripeOf(0) && between != g.stripeOf(1) && between != g.stripeOf(500)
                    && between != g.stripeOf(501), "page 250's stripe is neither range's");
            long stamp = between.writeLock();
            Thread copier = new Thread(() -> chain.copy(500L * PAGE, 0, 2 * PAGE));
            try {
                copier.start();
                copier.join(10_000);
                assertTrue(!copier.isAlive(), "the copy waited for the stripe of page 250, between its ranges");
            } finally {
                between.unlockWrite(stamp);
                copier.join();
            }
            byte[] copied = new byte[2 * PAGE];
            g.read(500L * PAGE, copied, 0, copied.length);
            assertArrayEquals(bytes, copied);
        }
    }

    /**
     * A copy reads its source frame itself, with no buffer: where the destination page breaks sharing,
     * its new frame is filled before the old one is dropped, so a copy within a mapped guest's page that
     * is the last mapper of its stable frame (dropping the frame frees it) still reads the page's bytes,
     * as does a copy onto another page that shares the frame.
     */
    @Test
    void aCopyWithinAMergedPageReadsItsBytesBeforeTheBreakDropsThem() {
        try (DedupEngine engine = DedupEngine.create(new EngineContext().poolBytes(8L << 20).warmFrames(0).conclude())) {
            MergeDomain domain = engine.createDomain("chain");
            RecordingMapping[] host = new RecordingMapping[1];
            Guest vm = engine.createGuest(domain, "vm", 2L * PAGE, (first, pages) -> host[0] = new RecordingMapping(first, pages));
            byte[] model = new byte[2 * PAGE];
            new Random(17).nextBytes(model);
            System.arraycopy(model, 0, model, PAGE, PAGE);
            vm.write(0, model, 0, model.length);
            engine.scanner().scanUntilStable(8);
            assertEquals(1, engine.counters().pagesSharing(), "vm's two pages share one frame");
            GuestChain chain = new GuestChain(vm);

            chain.copy(PAGE + 10, 100, 3000);       // onto page 1: the frame keeps page 0 as its mapper
            System.arraycopy(model, 100, model, PAGE + 10, 3000);
            chain.copy(200, 100, 3000);             // within page 0, its last mapper: the break frees the frame
            System.arraycopy(model, 100, model, 200, 3000);

            assertArrayEquals(model, contents(chain, vm));
            host[0].assertAgreesWith(vm, "after the copies");
            EngineInvariants.assertConsistent(engine, null, "after the copies");
        }
    }

    /**
     * A small write, fill or copy across two guests of 256 pages (256 stripes each) allocates no lock
     * stamps (they were an array of a stamp per stripe, 2 KiB a guest) and no copy buffer (4 KiB): a
     * WebAssembly memory's bulk operations come here. Counted in bytes this thread allocated, not in time;
     * the bound leaves room for the segment over a write's source array.
     */
    @Test
    void smallOperationsAcrossGuestsAllocateNoLockStampsOrCopyBuffer() {
        var threads = (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();
        try (DedupEngine engine = engine(16)) {
            MergeDomain domain = engine.createDomain("chain");
            Guest a = engine.createGuest(domain, "a", 256 * PAGE);
            Guest b = engine.createGuest(domain, "b", 256 * PAGE);
            GuestChain chain = new GuestChain(a, b);
            chain.fill(0, chain.sizeBytes(), (byte) 1);     // every page private: no operation takes a frame
            byte[] data = new byte[256];
            new Random(19).nextBytes(data);
            long edge = a.sizeBytes();
            Runnable[] ops = {
                () -> chain.write(edge - 128, data, 0, data.length),
                () -> chain.fill(edge - 100, 256, (byte) 2),
                () -> chain.copy(edge - 64, 3 * PAGE + 10, 256),
            };
            String[] names = {"write", "fill", "copy"};
            for (int k = 0; k < ops.length; k++) {
                for (int i = 0; i < 20_000; i++) {
                    ops[k].run();
                }
                long allocated = threads.getCurrentThreadAllocatedBytes();
                for (int i = 0; i < 10_000; i++) {
                    ops[k].run();
                }
                long perCall = (threads.getCurrentThreadAllocatedBytes() - allocated) / 10_000;
                assertTrue(perCall < 512, "a " + names[k] + " of 256 bytes across two guests allocated " + perCall + " bytes");
            }
        }
    }
}
