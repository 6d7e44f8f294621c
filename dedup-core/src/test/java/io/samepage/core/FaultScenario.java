package io.samepage.core;

import io.samepage.hashing.Pages;
import io.samepage.testing.AllocationFaultLoader;
import io.samepage.testing.AllocationFaultRuns;
import io.samepage.testing.AllocationFaults;
import java.util.function.LongFunction;
import java.util.function.LongSupplier;

/**
 * What the engine's allocation fault scenarios share, so that each states only its steps and checks:
 * the count {@link #getAsLong} returns ({@link AllocationFaultRuns} says what it must be), the end of a
 * run's armed steps ({@link #endArmed}), which also says where the run's findings happened, and the
 * engine most of them run on ({@link #onSmallEngine}). A subclass's {@code apply} arms
 * {@link AllocationFaults#failAt} where its steps start and calls {@link #endArmed} where they end.
 *
 * <p>{@link AllocationFaultTest} loads it with each subclass through its {@link AllocationFaultLoader},
 * which does not rewrite test classes: nothing here counts as an allocation of a run. Not thread safe.
 */
abstract class FaultScenario implements LongFunction<String>, LongSupplier {

    static final int PAGE = Pages.PAGE_SIZE;

    /** The steps and checks of one run on an engine; its findings, one line each ("" for none). */
    @FunctionalInterface
    interface EngineRun {
        String run(DedupEngine engine, long failAt) throws Exception;
    }

    private long allocations;

    /** The allocations the armed steps of the last run passed, as {@link #endArmed} counted them. */
    @Override
    public final long getAsLong() {
        return allocations;
    }

    /**
     * Ends a run's armed steps: keeps how many allocations they passed, for {@link #getAsLong}, and
     * disarms. Returns how that run's findings start: {@code "k=<failAt>"}, and where {@code failAt} is not
     * 0, {@code " at <site>"} (the site the failure was injected at, "null" if the steps never reached it).
     */
    final String endArmed(long failAt) {
        allocations = AllocationFaults.count();
        AllocationFaults.disarm();
        return "k=" + failAt + (failAt > 0 ? " at " + AllocationFaults.injectedAt() : "");
    }

    /**
     * Runs {@code steps} on an engine of its own (a pool of 4 MiB, hash seed 5, 4 frames kept warm, no
     * smart scan, one scanner thread), then disarms and closes it, whatever the steps did. A throwable out of
     * the steps, the injected {@link OutOfMemoryError} among them, is the run's finding: {@code
     * "k=<failAt> <site>: threw <throwable>"}.
     */
    static String onSmallEngine(long failAt, EngineRun steps) {
        EngineContext context = new EngineContext().poolBytes(4L << 20).hashSeed(5).warmFrames(4);
        context.knobs().smartScan(false).scanThreads(1);
        DedupEngine engine = DedupEngine.create(context.conclude());
        try {
            return steps.run(engine, failAt);
        } catch (Throwable t) {        // an OutOfMemoryError too: this run is over, the next one is not
            return "k=" + failAt + " " + AllocationFaults.injectedAt() + ": threw " + t;
        } finally {
            AllocationFaults.disarm();
            engine.close();
        }
    }
}
