package io.samepage.core;

import static org.junit.jupiter.api.Assertions.assertEquals;

import io.samepage.hashing.Pages;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.stream.LongStream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The engine's invariant, tested against a model: every read returns the bytes last written to that
 * guest address, as if nothing were merged; no write is lost, torn or leaked into another guest; no
 * page maps a frame of other content; pages merge only within a domain.
 *
 * <p>Each seed runs {@value #STEPS} random steps against plain {@code byte[]} models of the guests
 * (see {@link ModelRun} for the steps and the checks). Every failure names the seed and the step;
 * replay one seed with {@code ./mvnw -pl dedup-core test -Dtest=ModelBasedTest -Dsamepage.seed=N}.
 */
class ModelBasedTest {

    private static final int PAGE = Pages.PAGE_SIZE;
    private static final long[] DEFAULT_SEEDS = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
    private static final int STEPS = 4000;

    static LongStream seeds() {
        return Seeds.orReplay(LongStream.of(DEFAULT_SEEDS));
    }

    @ParameterizedTest(name = "seed {0}")
    @MethodSource("seeds")
    void everyReadReturnsTheLastWriteWhateverTheScannerMerged(long seed) {
        new ModelRun(seed).execute(STEPS);
    }

    @ParameterizedTest(name = "seed {0}, 3 hash values")
    @MethodSource("seeds")
    void everyReadReturnsTheLastWriteWhenHashesCollideAtWill(long seed) {
        new ModelRun(seed, new WeakHashers.Few(3)).execute(STEPS);
    }

    @Test
    void identicalContentInEveryDomainMergesOnlyWithinItsDomain() {
        EngineContext context = new EngineContext().poolBytes(16L << 20).hashSeed(3);
        try (DedupEngine engine = DedupEngine.create(context.conclude())) {
            byte[][] contents = new byte[4][PAGE];
            SplittableRandom random = new SplittableRandom(3);
            for (byte[] content : contents) {
                random.nextBytes(content);
            }
            List<Guest> pairs = new ArrayList<>();
            for (int d = 0; d < 3; d++) {
                MergeDomain domain = engine.createDomain("pair-" + d);
                for (int g = 0; g < 2; g++) {
                    Guest guest = engine.createGuest(domain, "pair-" + d + "-" + g, 8L * PAGE);
                    for (int page = 0; page < 8; page++) {
                        guest.write((long) page * PAGE, contents[page % 4], 0, PAGE);
                    }
                    pairs.add(guest);
                }
            }
            Guest alone = engine.createGuest(engine.createDomain("alone"), "alone", 4L * PAGE);
            for (int page = 0; page < 4; page++) {
                alone.write((long) page * PAGE, contents[page], 0, PAGE);
            }
            engine.scanner().scanFullPass();
            engine.scanner().scanFullPass();
            for (Guest guest : pairs) {
                assertEquals(8, guest.counters().mergingPages(), guest.name() + " merges with its own domain");
            }
            assertEquals(0, alone.counters().mergingPages(), "the same contents in other domains are no twin");
            EngineCounters c = engine.counters();
            assertEquals(3 * 4, c.pagesShared(), "one frame per content in each domain");
            assertEquals(3 * (16 - 4), c.pagesSharing());
            assertEquals(4, c.pagesUnshared(), "the lone domain's pages stay unique");
            assertEquals(4 + 3 * 4 + 4, engine.framesInUse(), "zero frames, shared frames and the lone guest's frames");
            EngineInvariants.assertConsistent(engine, engine.context().newScannerHasher(), "after two scans");
        }
    }

    @ParameterizedTest(name = "seed {0}, {1} scanner threads")
    @MethodSource("io.samepage.core.Seeds#onScannerThreads")
    void everyReadReturnsTheLastWriteOnSeveralScannerThreads(long seed, int threads) {
        new ModelRun(seed).scanThreads(threads).execute(STEPS);
    }

    @ParameterizedTest(name = "seed {0}, 3 hash values, {1} scanner threads")
    @MethodSource("io.samepage.core.Seeds#onScannerThreads")
    void everyReadReturnsTheLastWriteWhenHashesCollideOnSeveralScannerThreads(long seed, int threads) {
        new ModelRun(seed, new WeakHashers.Few(3)).scanThreads(threads).execute(STEPS);
    }
}
