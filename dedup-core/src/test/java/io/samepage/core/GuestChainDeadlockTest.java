package io.samepage.core;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.samepage.core.DedupException.Kind;
import io.samepage.hashing.Pages;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Deadlock freedom of {@link GuestChain}: every path that holds more than one page stripe at once, run
 * together over the same stripes, ends. Chains over three one-page guests (so every operation across
 * them wants the same three stripes) in address orders {@code a,b,c}, {@code c,b,a} and {@code b,a}:
 * each takes the stripes in the engine's creation order, whatever its address order; taken in address
 * order, the first two would each hold one and wait for the other's. Next to them {@link Guest#copy}
 * both ways between {@code a} and {@code c} (a chain of the two, in the order of the copy), the scanner
 * merging the guests' equal pages (it holds one stripe and only tries a second) and {@code run=2}
 * (one stripe at a time), and, half way through, {@link Guest#destroy} of {@code b}, which waits for
 * each of its stripes under the engine's monitor: the operations across {@code b} are refused from
 * then on ({@link Kind#DESTROYED}), the rest go on. A deadlock fails the test, with every thread's
 * stack, after {@link #BOUND}; a run takes about a second.
 */
class GuestChainDeadlockTest {

    private static final int PAGE = Pages.PAGE_SIZE;
    private static final int ITERATIONS = 20_000;
    private static final long SEED = 20_260_302;
    /** Not a timing assertion: many times a normal run, which takes about a second. */
    private static final Duration BOUND = Duration.ofSeconds(30);

    @ParameterizedTest(name = "{0} scanner threads")
    @ValueSource(ints = {1, 2})
    void chainsInAnyOrderGuestCopiesTheScannerAndADestroyNeverWaitInACycle(int scanThreads) throws Exception {
        EngineContext context = new EngineContext().poolBytes(4L << 20).hashSeed(SEED);
        context.knobs().scanThreads(scanThreads).useZeroPages(true);
        DedupEngine engine = DedupEngine.create(context.conclude());
        boolean ended = false;
        try {
            MergeDomain domain = engine.createDomain("d");
            Guest a = engine.createGuest(domain, "a", PAGE);
            Guest b = engine.createGuest(domain, "b", PAGE);
            Guest c = engine.createGuest(domain, "c", PAGE);
            GuestChain abc = new GuestChain(a, b, c);
            GuestChain cba = new GuestChain(c, b, a);
            GuestChain ba = new GuestChain(b, a);
            AtomicInteger done = new AtomicInteger();
            AtomicBoolean working = new AtomicBoolean(true);
            long mergesBefore = engine.scanner().merges();
            java.util.function.BooleanSupplier merged = () -> engine.scanner().merges() > mergesBefore;
            AtomicInteger finished = new AtomicInteger();
            List<Callable> workers = List.of(
                    rnd -> across(abc, rnd),
                    rnd -> across(cba, rnd),
                    rnd -> across(ba, rnd),
                    rnd -> {
                        a.copy(rnd.nextInt(PAGE / 2), c, rnd.nextInt(PAGE / 2), PAGE / 2);
                        c.copy(rnd.nextInt(PAGE / 2), a, rnd.nextInt(PAGE / 2), PAGE / 2);
                    });
            ExecutorService threads = Executors.newFixedThreadPool(workers.size() + 2,
                    r -> Thread.ofPlatform().daemon().unstarted(r));
            try {
                List<Future<?>> work = new ArrayList<>();
                for (int w = 0; w < workers.size(); w++) {
                    Callable op = workers.get(w);
                    SplittableRandom rnd = new SplittableRandom(SEED + w);
                    work.add(threads.submit(() -> loop(op, rnd, b, done, merged, finished)));
                }
                Future<?> destroyer = threads.submit(() -> {
                    // Halfway, and once the scanner has merged while every chain writes (unless the workers gave up).
                    while (done.get() < workers.size() * ITERATIONS / 2
                            || (!merged.getAsBoolean() && finished.get() < workers.size())) {
                        Thread.sleep(1);     // interrupted if the workers hang
                    }
                    b.destroy();
                    return null;
                });
                Future<Long> scanner = threads.submit(() -> scan(engine, working));
                for (Future<?> f : work) {
                    Watchdog.await(f, "a worker (seed " + SEED + ")", BOUND);
                }
                Watchdog.await(destroyer, "the destroy of b", BOUND);
                working.set(false);
                long merges = Watchdog.await(scanner, "the scanner", BOUND);
                assertTrue(merges > 0, "the scanner merged while the chains wrote: " + merges);
                ended = true;
            } finally {
                working.set(false);
                threads.shutdownNow();
            }
            assertTrue(b.isDestroyed());
            EngineInvariants.assertConsistent(engine, context.newScannerHasher(), "after the run (seed " + SEED + ")");
        } finally {
            if (ended) {
                engine.close();     // a deadlocked thread would make close() wait for ever
            }
        }
    }

    /** One operation of a worker; it may throw what a destroyed guest refuses with. */
    private interface Callable {
        void run(SplittableRandom rnd);
    }

    /**
     * Runs {@code op} {@value #ITERATIONS} times, and then on, a millisecond apart (at most 15,000 more),
     * until the scanner has merged and {@code b} is destroyed: on a loaded machine the writers may dirty
     * every page before each of the scanner's visits (a page merges only if unchanged between two), and
     * the destroy waits for a merge, since once {@code b} is gone its all-zero pages stop coming.
     */
    private static Void loop(Callable op, SplittableRandom rnd, Guest b, AtomicInteger done,
                             java.util.function.BooleanSupplier merged, AtomicInteger finished) throws InterruptedException {
        for (int i = 0; i < ITERATIONS
                || (i < ITERATIONS + 15_000 && !(merged.getAsBoolean() && b.isDestroyed())); i++) {
            if (i >= ITERATIONS) {
                Thread.sleep(1);
            }
            try {
                op.run(rnd);
            } catch (DedupException e) {
                if (e.kind() != Kind.DESTROYED || !b.isDestroyed()) {
                    throw e;
                }
            }
            done.incrementAndGet();
        }
        finished.incrementAndGet();
        return null;
    }

    /**
     * A fill, a write or a copy across the middle guest of {@code chain} (or across its two guests),
     * so it takes every guest's stripe; now and then one within the first guest only.
     */
    private static void across(GuestChain chain, SplittableRandom rnd) {
        long middle = chain.sizeBytes() == 2L * PAGE ? PAGE : 2L * PAGE;
        long from = PAGE - 1 - rnd.nextInt(64);
        long length = middle + 1 + rnd.nextInt(64) - from;
        switch (rnd.nextInt(4)) {
            case 0 -> chain.fill(from, length, (byte) rnd.nextInt(2));
            case 1 -> chain.write(from, new byte[(int) length], 0, (int) length);
            case 2 -> chain.copy(from, chain.sizeBytes() - length - rnd.nextInt(8), length);
            default -> chain.fill(rnd.nextInt(PAGE / 2), PAGE / 2, (byte) 1);
        }
    }

    private static long scan(DedupEngine engine, AtomicBoolean working) {
        SplittableRandom rnd = new SplittableRandom(SEED - 1);
        long merges = engine.scanner().merges();
        while (working.get()) {
            if (rnd.nextInt(200) == 0) {
                engine.knobs().run(ScanKnobs.RUN_UNMERGE);
                engine.scanner().doWork();
                assertEquals(ScanKnobs.RUN_STOP, engine.knobs().run(), "run=2 ends at run=0");
                engine.knobs().run(ScanKnobs.RUN_MERGE);
            } else {
                engine.scanner().scanBatch(1 + rnd.nextInt(4));
            }
        }
        return engine.scanner().merges() - merges;
    }
}
