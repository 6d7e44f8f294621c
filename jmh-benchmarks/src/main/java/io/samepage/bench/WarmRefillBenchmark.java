package io.samepage.bench;

import io.samepage.core.FrameBacking;
import io.samepage.core.FramePool;
import io.samepage.hashing.Pages;
import java.lang.foreign.ValueLayout;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OperationsPerInvocation;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

/**
 * What the scanner pays to keep freed frames ready for copy-on-write ({@link FramePool#replenishWarm}):
 * {@value #WARM} frames (32 MiB, the default warm list's largest) that went back to the operating
 * system, backed with memory again and written once each, scored in nanoseconds per frame.
 * {@code populate=true} is the pool as built (one {@code madvise(MADV_POPULATE_WRITE)} per run of
 * neighbouring frames, then the writes); {@code populate=false}, the reference, is the same pool with a
 * backing whose populate does nothing, so every write takes a page fault, as the refill did before.
 * Before each shot the pool is put in the same state: every frame taken, then all freed (the first
 * {@value #WARM} stay warm, the next {@value #WARM} go back to the OS) and the warm ones taken again.
 */
@State(Scope.Thread)
@Fork(value = 1, jvmArgsAppend = "--enable-native-access=ALL-UNNAMED")
@BenchmarkMode(Mode.SingleShotTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Warmup(iterations = 3)
@Measurement(iterations = 10)
public class WarmRefillBenchmark {

    static final int WARM = 8192;
    static final int FRAMES = 2 * WARM;

    @Param({"true", "false"})
    public boolean populate;

    private FramePool pool;
    private final int[] frames = new int[FRAMES];

    @Setup(Level.Trial)
    public void create() {
        pool = new FramePool((FRAMES + 1L) * Pages.PAGE_SIZE, WARM,
                populate ? FrameBacking.anonymous() : WithoutPopulate.anonymous());
        if (!pool.tryReserve(FRAMES)) {
            throw new IllegalStateException("the pool has no room for " + FRAMES + " frames");
        }
        for (int i = 0; i < FRAMES; i++) {
            frames[i] = pool.allocateReserved();
            pool.memory().set(ValueLayout.JAVA_LONG, FramePool.offsetOf(frames[i]), i + 1);
        }
    }

    /** Every frame back, then the warm ones taken again: {@value #WARM} discarded frames to refill. */
    @Setup(Level.Invocation)
    public void discardHalf() {
        int[] all = frames.clone();
        pool.freeAll(all, FRAMES);
        if (pool.warmFrames() != WARM || !pool.tryReserve(WARM)) {
            throw new IllegalStateException("expected " + WARM + " warm frames, found " + pool.warmFrames());
        }
        for (int i = 0; i < WARM; i++) {
            frames[i] = pool.allocateReserved();
        }
    }

    @Benchmark
    @OperationsPerInvocation(WARM)
    public int refill() {
        return pool.replenishWarm(WARM);
    }

    /** The refilled frames taken again, so the next shot starts with every frame taken. */
    @TearDown(Level.Invocation)
    public void takeRefilled() {
        if (pool.warmFrames() != WARM || !pool.tryReserve(WARM)) {
            throw new IllegalStateException("the refill warmed " + pool.warmFrames() + " frames, not " + WARM);
        }
        for (int i = WARM; i < FRAMES; i++) {
            frames[i] = pool.allocateReserved();
        }
    }

    @TearDown(Level.Trial)
    public void close() {
        pool.close();
    }
}
