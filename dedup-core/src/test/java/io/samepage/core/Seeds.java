package io.samepage.core;

import java.util.stream.LongStream;

/** The seeds of the randomized tests: the defaults, or the one {@code -Dsamepage.seed=N} replays. */
final class Seeds {

    private Seeds() {
    }

    static LongStream orReplay(LongStream defaults) {
        String replay = System.getProperty("samepage.seed", "").trim();
        return replay.isEmpty() ? defaults : LongStream.of(Long.parseLong(replay));
    }
}
