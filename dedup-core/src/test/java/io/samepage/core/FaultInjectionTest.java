package io.samepage.core;

import java.util.stream.LongStream;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Failure atomicity under a failing host: see {@link FaultModelRun} for the steps and the checks.
 * Replay one seed with {@code ./mvnw -pl dedup-core test -Dtest=FaultInjectionTest -Dsamepage.seed=N}.
 */
class FaultInjectionTest {

    private static final int STEPS = 1500;

    static LongStream seeds() {
        return Seeds.orReplay(LongStream.rangeClosed(1, 16));
    }

    @ParameterizedTest(name = "seed {0}")
    @MethodSource("seeds")
    void everyRefusedStepChangesNothingAndEveryOtherReadsBackWhatWasWritten(long seed) {
        new FaultModelRun(seed).execute(STEPS);
    }

    @ParameterizedTest(name = "seed {0}, scanner on its own thread")
    @MethodSource("seeds")
    void readsHoldWhileAScannerThreadMergesOnAFailingHost(long seed) {
        new FaultModelRun(seed, true).execute(STEPS);
    }

    @ParameterizedTest(name = "seed {0}, {1} scanner threads")
    @MethodSource("io.samepage.core.Seeds#onScannerThreads")
    void everyRefusedStepChangesNothingOnSeveralScannerThreads(long seed, int threads) {
        new FaultModelRun(seed).scanThreads(threads).execute(STEPS);
    }

    @ParameterizedTest(name = "seed {0}, {1} scanner threads on their own thread")
    @MethodSource("io.samepage.core.Seeds#onScannerThreads")
    void readsHoldWhileSeveralScannerThreadsMergeOnAFailingHost(long seed, int threads) {
        new FaultModelRun(seed, true).scanThreads(threads).execute(STEPS);
    }
}
