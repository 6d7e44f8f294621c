package io.samepage.core;

import java.util.stream.LongStream;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The embedder access path against a model while a scanner thread merges: see {@link AccessModelRun}.
 * Replay one seed with {@code ./mvnw -pl dedup-core test -Dtest=AccessPathModelTest -Dsamepage.seed=N}.
 */
class AccessPathModelTest {

    private static final int STEPS = 1500;

    static LongStream seeds() {
        return Seeds.orReplay(LongStream.rangeClosed(1, 8));
    }

    @ParameterizedTest(name = "seed {0}")
    @MethodSource("seeds")
    void readsThroughCachedTranslationsReturnTheLastWriteWhileTheScannerMerges(long seed) {
        new AccessModelRun(seed, false).execute(STEPS);
    }

    @ParameterizedTest(name = "seed {0}, failing host")
    @MethodSource("seeds")
    void refusedBreaksThroughTheAccessPathChangeNothingOnAFailingHost(long seed) {
        new AccessModelRun(seed, true).execute(STEPS);
    }

    @ParameterizedTest(name = "seed {0}, {1} scanner threads, failing host")
    @MethodSource("io.samepage.core.Seeds#onScannerThreads")
    void accessPathHoldsOnSeveralScannerThreads(long seed, int threads) {
        new AccessModelRun(seed, true).scanThreads(threads).execute(STEPS);
    }
}
