package io.samepage.core;

import java.util.stream.LongStream;
import java.util.stream.Stream;
import org.junit.jupiter.params.provider.Arguments;
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

    /** Seeds 1 to 4 on 2 and on 4 scanner threads ({@code scan_threads}). */
    static Stream<Arguments> seedsOnThreads() {
        return Seeds.orReplay(LongStream.rangeClosed(1, 4)).boxed()
                .flatMap(seed -> Stream.of(Arguments.of(seed, 2), Arguments.of(seed, 4)));
    }

    @ParameterizedTest(name = "seed {0}, {1} scanner threads, failing host")
    @MethodSource("seedsOnThreads")
    void accessPathHoldsOnSeveralScannerThreads(long seed, int threads) {
        new AccessModelRun(seed, true).scanThreads(threads).execute(STEPS);
    }
}
