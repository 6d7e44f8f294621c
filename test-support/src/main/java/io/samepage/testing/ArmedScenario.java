package io.samepage.testing;

import java.util.List;
import java.util.function.LongFunction;
import java.util.function.LongSupplier;

/**
 * What the allocation fault scenarios of the daemon, host mode and the image index share, so that each
 * states only its set-up, its steps and its checks: a run ({@link #apply}) whose steps run with the k-th
 * allocation failing ({@link #armed}), the count {@link AllocationFaultRuns} asks for ({@link #getAsLong}),
 * the prefix of the run's findings ({@link #where}), and the check that what the steps threw is the
 * injected {@link OutOfMemoryError} ({@link #expectInjected}).
 *
 * <p>A subclass is loaded through an {@link AllocationFaultLoader}, in a package the loader takes but
 * does not rewrite; this class comes from the parent loader and is not rewritten either, so nothing here
 * counts as an allocation of a run. Not thread safe: one run at a time.
 */
public abstract class ArmedScenario implements LongFunction<String>, LongSupplier {

    /** A run's steps, the ones that run with an allocation failing. */
    @FunctionalInterface
    public interface Steps {
        void run() throws Exception;
    }

    private long allocations;
    private long failAt;
    private String where;

    /** For a subclass, which a test makes through {@link AllocationFaultRuns#load}. */
    protected ArmedScenario() {
    }

    /** The allocations the armed steps of the last run passed, as {@link #armed} counted them. */
    @Override
    public final long getAsLong() {
        return allocations;
    }

    /**
     * One run, failing the {@code failAt}-th allocation of its steps (0: none): {@link #run}, whose findings
     * it returns. A throwable out of {@link #run} (its set-up or checks threw; what the steps threw
     * {@link #armed} caught) is the run's one finding, {@code "<where>: the checks threw <throwable>"}.
     * Disarmed after, whatever happened.
     */
    @Override
    public final String apply(long failAt) {
        this.failAt = failAt;
        where = "k=" + failAt;
        try {
            return run(failAt);
        } catch (Throwable t) {
            return where + ": the checks threw " + t;
        } finally {
            AllocationFaults.disarm();
        }
    }

    /**
     * The run's set-up, its steps (through {@link #armed}, once) and its checks, failing the
     * {@code failAt}-th allocation of the steps.
     *
     * @return the run's findings, one line each, or {@code ""} for none
     */
    protected abstract String run(long failAt) throws Exception;

    /**
     * Runs {@code steps} with the run's {@code failAt}-th allocation failing ({@link AllocationFaults#failAt}),
     * then keeps how many allocations they passed, for {@link #getAsLong}, and disarms; {@link #where} names
     * the site from then on.
     *
     * @return what the steps threw, the injected {@link OutOfMemoryError} among others; null if nothing
     */
    protected final Throwable armed(Steps steps) {
        Throwable thrown = null;
        AllocationFaults.failAt(failAt);
        try {
            steps.run();
        } catch (Throwable t) {     // an OutOfMemoryError too: this run is over, the next one is not
            thrown = t;
        }
        allocations = AllocationFaults.count();
        AllocationFaults.disarm();
        where += failAt > 0 ? " at " + AllocationFaults.injectedAt() : "";
        return thrown;
    }

    /**
     * How the run's findings start: {@code "k=<failAt>"}, and once {@link #armed} has run, where {@code failAt}
     * is not 0, {@code " at <site>"} (the site the failure was injected at, "null" if the steps never reached it).
     */
    protected final String where() {
        return where;
    }

    /**
     * Whether {@code thrown} is the {@link OutOfMemoryError} {@link AllocationFaults} injected (its message
     * starts with {@link AllocationFaults#MESSAGE_PREFIX}); false for null.
     */
    protected static boolean injected(Throwable thrown) {
        return thrown instanceof OutOfMemoryError && thrown.getMessage().startsWith(AllocationFaults.MESSAGE_PREFIX);
    }

    /**
     * The finding {@code "<prefix>: threw <thrown> instead of the OutOfMemoryError"} if the steps threw
     * something other than the injected {@link OutOfMemoryError}; null if they threw that, or nothing.
     */
    protected static String thrownOtherwise(Throwable thrown, String prefix) {
        return thrown == null || injected(thrown) ? null
                : prefix + ": threw " + thrown + " instead of the OutOfMemoryError";
    }

    /** Adds {@link #thrownOtherwise} to {@code findings}, unless it is null. */
    protected static void expectInjected(Throwable thrown, String prefix, List<String> findings) {
        String otherwise = thrownOtherwise(thrown, prefix);
        if (otherwise != null) {
            findings.add(otherwise);
        }
    }

    /**
     * The index of {@code shape} in {@code shapes}, for a scenario made in one of them.
     *
     * @throws IllegalArgumentException if {@code shape} is none of them: "no shape 'x': a or b"
     */
    protected static int shape(String shape, String... shapes) {
        int index = List.of(shapes).indexOf(shape);
        if (index < 0) {
            int last = shapes.length - 1;
            throw new IllegalArgumentException("no shape '" + shape + "': "
                    + String.join(", ", List.of(shapes).subList(0, last)) + " or " + shapes[last]);
        }
        return index;
    }
}
