package io.samepage.core;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import io.samepage.core.DedupException.Kind;
import io.samepage.hashing.Pages;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.stream.LongStream;
import java.util.stream.Stream;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * {@link GuestChain} writes, fills and copies from several threads at once, over chains that share
 * guests in different orders, next to plain {@link Guest#write}, {@link Guest#fill} and {@link
 * Guest#copy} on the same guests, while the scanner merges (one or two scanner threads, or {@link
 * Scanner#scanUntilStable} over and over, with {@code run=2} and {@code use_zero_pages} toggled now and
 * then), in a pool so small that many operations are refused ({@link Kind#POOL_EXHAUSTED}).
 *
 * <p>Each guest is cut into a head, a middle and a tail at byte offsets that are not page aligned; each
 * part has one owner thread, so owners share pages (all three share each one-page guest's page), and
 * in the 257-page guest, whose page 256 has page 0's stripe, the owners of those two pages share a
 * stripe but no page. Thread 0 owns the tail of every even guest and the head of every odd one, thread
 * 1 the rest of the heads and tails: so in chain {@code 0,1,2,3,4} and in chain {@code 4,3,2,1,0} every
 * boundary between guests lies inside one thread's bytes, and its chain operations cross it. Thread 2
 * owns the middles. Writes are mostly zeros or one content, so shared pages often merge, and the next
 * write to one breaks the sharing while other owners write it too. Each thread keeps a model of its
 * bytes and, after every operation, reads its range back: a refused one changed nothing. At the end
 * every byte of every guest reads as the models say, before and after the scanner settles; the {@link
 * EngineInvariants} hold; and once every guest is destroyed, the pool's frames in use and available
 * are what they were before the first guest.
 *
 * <p>Thread scheduling is not reproducible; each thread's choices are, from the seed, which every
 * failure names ({@code -Dsamepage.seed=N} replays one).
 */
class GuestChainStressTest {

    private static final int PAGE = Pages.PAGE_SIZE;
    private static final int THREADS = 3;
    private static final int ITERATIONS = 20_000;
    /** Pages of each guest, in creation order. */
    private static final int[] PAGES = {1, 1, 3, 1, 257};
    private static final int[] HEAD = {1365, 1500, 4100, 1000, 20 * PAGE + 700};
    private static final int[] TAIL = {1200, 1111, 4500, 1333, 6 * PAGE / 4};
    /** Chains as guest indexes in address order. */
    private static final int[][] CHAINS = {{0, 1, 2, 3, 4}, {4, 3, 2, 1, 0}, {3, 1, 4, 0}};
    private static final int POOL_FRAMES = 72;
    private static final byte[][] CONTENTS = new byte[5][PAGE];

    static {
        SplittableRandom random = new SplittableRandom(99);
        for (byte[] content : CONTENTS) {
            for (int i = 0; i < PAGE; i++) {
                content[i] = (byte) (1 + random.nextInt(0x40));
            }
        }
    }

    enum Scanning { ONE_THREAD, TWO_THREADS, UNTIL_STABLE }

    static Stream<Arguments> runs() {
        return Seeds.orReplay(LongStream.of(20_260_301)).boxed()
                .flatMap(seed -> Arrays.stream(Scanning.values()).map(s -> Arguments.of(seed, s)));
    }

    private long seed;
    private DedupEngine engine;
    private Guest[] guests;
    private byte[][] model;
    private Layout[] chains;

    @ParameterizedTest(name = "seed {0}, scanner {1}")
    @MethodSource("runs")
    void everyByteReadsAsItsOwnersModelSaysAndRefusedOperationsChangeNothing(long seed, Scanning scanning)
            throws Exception {
        this.seed = seed;
        EngineContext context = new EngineContext().poolBytes((long) POOL_FRAMES * PAGE).hashSeed(seed);
        context.knobs().useZeroPages(true).maxPageSharing(3).scanThreads(scanning == Scanning.ONE_THREAD ? 1 : 2);
        engine = DedupEngine.create(context.conclude());
        try {
            MergeDomain shared = engine.createDomain("shared");
            MergeDomain other = engine.createDomain("other");
            long inUse = engine.framesInUse();
            int available = engine.pool().framesAvailable();
            guests = new Guest[PAGES.length];
            model = new byte[PAGES.length][];
            for (int g = 0; g < PAGES.length; g++) {
                guests[g] = engine.createGuest(g == 3 ? other : shared, "g" + g, (long) PAGES[g] * PAGE);
                model[g] = new byte[PAGES[g] * PAGE];
            }
            chains = new Layout[CHAINS.length];
            for (int c = 0; c < CHAINS.length; c++) {
                chains[c] = new Layout(CHAINS[c]);
            }
            Writer[] writers = new Writer[THREADS];
            for (int t = 0; t < THREADS; t++) {
                writers[t] = new Writer(t);
            }
            long merges = run(writers, scanning);
            long refused = 0;
            long crossed = 0;
            for (Writer w : writers) {
                refused += w.refused;
                crossed += w.crossed;
            }
            String counts = at("after the run") + ": " + refused + " refused, " + crossed
                    + " chain operations across guests, " + merges + " merges";
            assertTrue(refused > 0 && crossed > 0 && merges > 0, counts);
            verifyAll("after the run");
            engine.scanner().scanUntilStable(Scanner.DEFAULT_MAX_FULL_SCANS_TO_SETTLE);
            verifyAll("after the scanner settled");
            EngineInvariants.assertConsistent(engine, context.newScannerHasher(), at("after the scanner settled"));
            for (Guest guest : guests) {
                guest.destroy();
            }
            assertEquals(inUse, engine.framesInUse(), at("frames in use once every guest is destroyed"));
            assertEquals(available, engine.pool().framesAvailable(), at("frames available (none reserved) once every guest is destroyed"));
        } finally {
            engine.close();
        }
    }

    /** Runs the writers and the scanner to the writers' end; returns the merges the scanner did meanwhile. */
    private long run(Writer[] writers, Scanning scanning) throws Exception {
        AtomicBoolean writing = new AtomicBoolean(true);
        ExecutorService threads = Executors.newFixedThreadPool(THREADS + 1, r -> Thread.ofPlatform().daemon().unstarted(r));
        try {
            Future<Long> scanner = threads.submit(() -> scan(writing, scanning));
            List<Future<?>> work = new ArrayList<>();
            for (Writer w : writers) {
                work.add(threads.submit(w));
            }
            for (Future<?> f : work) {
                Watchdog.await(f, at("a writer"));
            }
            writing.set(false);
            return Watchdog.await(scanner, at("the scanner"));
        } finally {
            writing.set(false);
            threads.shutdownNow();
        }
    }

    private long scan(AtomicBoolean writing, Scanning scanning) {
        SplittableRandom rnd = new SplittableRandom(seed - 1);
        ScanKnobs knobs = engine.knobs();
        long merges = engine.scanner().merges();
        while (writing.get()) {
            int r = rnd.nextInt(100);
            if (r == 0) {
                knobs.run(ScanKnobs.RUN_UNMERGE);
                try {
                    engine.scanner().doWork();
                } catch (DedupException e) {
                    assertEquals(Kind.POOL_EXHAUSTED, e.kind(), at("run=2"));
                }
                knobs.run(ScanKnobs.RUN_MERGE);
            } else if (r < 3) {
                knobs.useZeroPages(!knobs.useZeroPages());
            } else if (scanning == Scanning.UNTIL_STABLE) {
                try {
                    engine.scanner().scanUntilStable(3, 1 + rnd.nextInt(64), () -> { });
                } catch (DedupException e) {
                    assertEquals(Kind.NOT_SETTLED, e.kind(), at("scanUntilStable"));
                }
            } else {
                engine.scanner().scanBatch(1 + rnd.nextInt(64));
            }
        }
        return engine.scanner().merges() - merges;
    }

    private String at(String where) {
        return "seed " + seed + " (-Dsamepage.seed=" + seed + "), " + where;
    }

    private void verifyAll(String where) {
        for (int g = 0; g < guests.length; g++) {
            byte[] back = new byte[model[g].length];
            guests[g].read(0, back, 0, back.length);
            int i = Arrays.mismatch(back, model[g]);
            if (i >= 0) {
                fail(at(where) + ": guest g" + g + " byte " + i + " (owner " + owner(g, i) + ") reads " + back[i]
                        + ", its model says " + model[g][i]);
            }
        }
    }

    /** The thread owning byte {@code at} of guest {@code g}. */
    private static int owner(int g, int at) {
        if (at < HEAD[g]) {
            return g % 2 == 0 ? 1 : 0;
        }
        return at >= PAGES[g] * PAGE - TAIL[g] ? g % 2 == 0 ? 0 : 1 : 2;
    }

    /** A chain, where its guests start, and each thread's runs of bytes in it. */
    private final class Layout {

        final int[] order;
        final long[] starts;
        final GuestChain chain;
        /** {@code runs.get(t)}: {start, end} pairs of chain addresses that thread {@code t} owns. */
        final List<List<long[]>> runs = new ArrayList<>();

        Layout(int[] order) {
            this.order = order;
            this.starts = new long[order.length + 1];
            Guest[] members = new Guest[order.length];
            for (int i = 0; i < order.length; i++) {
                members[i] = guests[order[i]];
                starts[i + 1] = starts[i] + (long) PAGES[order[i]] * PAGE;
            }
            chain = new GuestChain(members);
            for (int t = 0; t < THREADS; t++) {
                runs.add(new ArrayList<>());
            }
            int last = -1;
            for (int i = 0; i < order.length; i++) {
                int g = order[i];
                int size = PAGES[g] * PAGE;
                int[] cuts = {0, HEAD[g], size - TAIL[g], size};
                for (int part = 0; part < 3; part++) {
                    int t = owner(g, cuts[part]);
                    List<long[]> own = runs.get(t);
                    if (t == last) {
                        own.getLast()[1] = starts[i] + cuts[part + 1];
                    } else {
                        own.add(new long[] {starts[i] + cuts[part], starts[i] + cuts[part + 1]});
                    }
                    last = t;
                }
            }
        }

        int guestAt(long address) {
            int i = Arrays.binarySearch(starts, address);
            return i >= 0 ? i : -i - 2;
        }

        /** The model's bytes of {@code [address, address + length)}. */
        byte[] modelOf(long address, int length) {
            byte[] bytes = new byte[length];
            for (int done = 0; done < length; ) {
                int i = guestAt(address + done);
                int from = (int) (address + done - starts[i]);
                int n = (int) Math.min(length - done, starts[i + 1] - address - done);
                System.arraycopy(model[order[i]], from, bytes, done, n);
                done += n;
            }
            return bytes;
        }

        void setModel(long address, byte[] bytes) {
            for (int done = 0; done < bytes.length; ) {
                int i = guestAt(address + done);
                int n = (int) Math.min(bytes.length - done, starts[i + 1] - address - done);
                System.arraycopy(bytes, done, model[order[i]], (int) (address + done - starts[i]), n);
                done += n;
            }
        }

        byte[] read(long address, int length) {
            byte[] bytes = new byte[length];
            for (int done = 0; done < length; ) {
                int i = guestAt(address + done);
                int n = (int) Math.min(length - done, starts[i + 1] - address - done);
                guests[order[i]].read(address + done - starts[i], bytes, done, n);
                done += n;
            }
            return bytes;
        }

        boolean crossesGuests(long address, int length) {
            return guestAt(address) != guestAt(address + length - 1);
        }
    }

    /** One thread: operations on its own bytes only, each checked against its model. */
    private final class Writer implements java.util.concurrent.Callable<Void> {

        final int id;
        final SplittableRandom rnd;
        long refused;
        long crossed;

        Writer(int id) {
            this.id = id;
            this.rnd = new SplittableRandom(seed + 100 + id);
        }

        @Override
        public Void call() {
            Layout guestOrder = new Layout(new int[] {0, 1, 2, 3, 4});  // plain guest operations: within one guest's part
            for (int iteration = 0; iteration < ITERATIONS; iteration++) {
                boolean plain = rnd.nextInt(5) == 0;
                Layout layout = plain ? guestOrder : chains[rnd.nextInt(chains.length)];
                long[] run = pick(layout.runs.get(id));
                if (plain) {
                    run = withinOneGuest(layout, run);
                }
                int length = length(run);
                long at = place(layout, run, length);
                int kind = rnd.nextInt(10);
                String what;
                byte[] after;
                try {
                    if (kind < 4) {
                        after = content(at, length);
                        what = "write";
                        if (plain) {
                            int i = layout.guestAt(at);
                            guests[layout.order[i]].write(at - layout.starts[i], after, 0, length);
                        } else {
                            layout.chain.write(at, after, 0, length);
                        }
                    } else if (kind < 7) {
                        byte value = (byte) (rnd.nextInt(10) < 7 ? 0 : 1 + rnd.nextInt(3));
                        after = new byte[length];
                        Arrays.fill(after, value);
                        what = "fill with " + value;
                        if (plain) {
                            int i = layout.guestAt(at);
                            guests[layout.order[i]].fill(at - layout.starts[i], length, value);
                        } else {
                            layout.chain.fill(at, length, value);
                        }
                    } else {
                        long[] source = pick(layout.runs.get(id));
                        if (plain) {
                            source = withinOneGuest(layout, source);
                        }
                        length = (int) Math.min(length, source[1] - source[0]);
                        long from = source[0] + rnd.nextLong(source[1] - source[0] - length + 1);
                        long aligned = from - ((from - at) & (PAGE - 1));      // same offset in its page as the target
                        from = rnd.nextBoolean() && aligned >= source[0] ? aligned : from;
                        after = layout.modelOf(from, length);
                        what = "copy from 0x" + Long.toHexString(from);
                        if (plain) {
                            int s = layout.guestAt(from);
                            int d = layout.guestAt(at);
                            guests[layout.order[s]].copy(from - layout.starts[s], guests[layout.order[d]],
                                    at - layout.starts[d], length);
                        } else {
                            layout.chain.copy(at, from, length);
                        }
                    }
                    layout.setModel(at, after);
                    crossed += !plain && layout.crossesGuests(at, length) ? 1 : 0;
                } catch (DedupException e) {
                    if (e.kind() != Kind.POOL_EXHAUSTED) {
                        throw new AssertionError(at("thread " + id + " iteration " + iteration) + ": " + e, e);
                    }
                    refused++;
                    what = "refused operation";
                }
                byte[] expected = layout.modelOf(at, length);
                byte[] back = layout.read(at, length);
                int i = Arrays.mismatch(expected, back);
                if (i >= 0) {
                    fail(at("thread " + id + " iteration " + iteration) + ": after a " + what + " of " + length
                            + " bytes at 0x" + Long.toHexString(at) + " of " + layout.chain + ", byte " + i + " reads "
                            + back[i] + ", the model says " + expected[i]);
                }
            }
            return null;
        }

        private long[] pick(List<long[]> own) {
            return own.get(rnd.nextInt(own.size()));
        }

        /** The part of {@code run} within one guest, picked at random. */
        private long[] withinOneGuest(Layout layout, long[] run) {
            int first = layout.guestAt(run[0]);
            int i = first + rnd.nextInt(layout.guestAt(run[1] - 1) - first + 1);
            return new long[] {Math.max(run[0], layout.starts[i]), Math.min(run[1], layout.starts[i + 1])};
        }

        private int length(long[] run) {
            int max = switch (rnd.nextInt(4)) {
                case 0 -> 16;
                case 1 -> PAGE;
                case 2 -> 3 * PAGE;
                default -> 24 * PAGE;
            };
            return 1 + rnd.nextInt((int) Math.min(max, run[1] - run[0]));
        }

        /** Where in {@code run} the operation goes: half the time across a guest boundary in it, if there is one. */
        private long place(Layout layout, long[] run, int length) {
            int first = layout.guestAt(run[0]);
            int last = layout.guestAt(run[1] - 1);
            if (length > 1 && last > first && rnd.nextBoolean()) {
                long boundary = layout.starts[first + 1 + rnd.nextInt(last - first)];
                long at = boundary - 1 - rnd.nextInt(length - 1);
                return Math.clamp(at, run[0], run[1] - length);
            }
            return run[0] + rnd.nextLong(run[1] - run[0] - length + 1);
        }

        /** {@code length} bytes for {@code address}: a page's worth of one of a few contents at its offsets, or random. */
        private byte[] content(long address, int length) {
            byte[] bytes = new byte[length];
            // Mostly zeros or one content: the pages owners share often end up all zeros or equal, and
            // merge, so the next write to them breaks the sharing while other owners write them too.
            int r = rnd.nextInt(20);
            int pick = r < 8 ? -1 : r < 14 ? 0 : r < 16 ? 1 + rnd.nextInt(CONTENTS.length - 1) : CONTENTS.length;
            if (pick < 0) {
                return bytes;
            }
            if (pick == CONTENTS.length) {
                rnd.nextBytes(bytes);
            } else {
                for (int i = 0; i < length; i++) {
                    bytes[i] = CONTENTS[pick][(int) ((address + i) & (PAGE - 1))];
                }
            }
            return bytes;
        }
    }
}
