package io.samepage.image;

import io.samepage.core.Seeds;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.stream.LongStream;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Image loads, on one thread and on workers, on a failing host with a small pool: see {@link LoadFaultRun}
 * for the steps and the checks. Replay one seed with
 * {@code ./mvnw -pl image-index -am test -Dtest=ImageLoaderFaultTest -Dsurefire.failIfNoSpecifiedTests=false -Dsamepage.seed=N}.
 */
class ImageLoaderFaultTest {

    private static final int STEPS = 80;

    @TempDir
    Path dir;

    static LongStream seeds() {
        return Seeds.orReplay(LongStream.rangeClosed(1, 16));
    }

    @ParameterizedTest(name = "seed {0}")
    @MethodSource("seeds")
    void aStoppedLoadLeavesTheBlocksBeforeItsStopAndTheEngineConsistent(long seed) throws IOException {
        new LoadFaultRun(seed, false, Files.createDirectory(dir.resolve("image"))).execute(STEPS);
    }

    @ParameterizedTest(name = "seed {0}, scanner on its own thread")
    @MethodSource("seeds")
    void loadsHoldWhileAScannerThreadMergesOnAFailingHost(long seed) throws IOException {
        new LoadFaultRun(seed, true, Files.createDirectory(dir.resolve("image"))).execute(STEPS);
    }
}
