package io.samepage.core;

import java.util.stream.LongStream;
import java.util.stream.Stream;
import org.junit.jupiter.params.provider.Arguments;

/**
 * The seeds of the randomized tests: the defaults; or the one {@code -Dsamepage.seed=N} replays; or, for
 * a longer soak than CI's, every seed of {@code -Dsamepage.seeds=FROM..TO} (inclusive).
 */
public final class Seeds {

    private Seeds() {
    }

    public static LongStream orReplay(LongStream defaults) {
        String replay = System.getProperty("samepage.seed", "").trim();
        if (!replay.isEmpty()) {
            return LongStream.of(Long.parseLong(replay));
        }
        String range = System.getProperty("samepage.seeds", "").trim();
        if (range.isEmpty()) {
            return defaults;
        }
        String[] ends = range.split("\\.\\.", -1);
        if (ends.length != 2) {
            throw new IllegalArgumentException("-Dsamepage.seeds=" + range + ": expected FROM..TO, as 100..400");
        }
        return LongStream.rangeClosed(Long.parseLong(ends[0].trim()), Long.parseLong(ends[1].trim()));
    }

    /** Seeds 1 to 4 (or the replayed one) on 2 and on 4 scanner threads ({@code scan_threads}). */
    static Stream<Arguments> onScannerThreads() {
        return orReplay(LongStream.rangeClosed(1, 4)).boxed()
                .flatMap(seed -> Stream.of(Arguments.of(seed, 2), Arguments.of(seed, 4)));
    }
}
