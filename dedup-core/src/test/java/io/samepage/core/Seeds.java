package io.samepage.core;

import java.util.stream.LongStream;
import java.util.stream.Stream;
import org.junit.jupiter.params.provider.Arguments;

/** The seeds of the randomized tests: the defaults, or the one {@code -Dsamepage.seed=N} replays. */
final class Seeds {

    private Seeds() {
    }

    static LongStream orReplay(LongStream defaults) {
        String replay = System.getProperty("samepage.seed", "").trim();
        return replay.isEmpty() ? defaults : LongStream.of(Long.parseLong(replay));
    }

    /** Seeds 1 to 4 (or the replayed one) on 2 and on 4 scanner threads ({@code scan_threads}). */
    static Stream<Arguments> onScannerThreads() {
        return orReplay(LongStream.rangeClosed(1, 4)).boxed()
                .flatMap(seed -> Stream.of(Arguments.of(seed, 2), Arguments.of(seed, 4)));
    }
}
