package io.samepage.wasm;

import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import org.agrona.concurrent.Agent;
import org.agrona.concurrent.AgentRunner;
import org.agrona.concurrent.SleepingMillisIdleStrategy;

/**
 * The engine's scanner on a thread of its own for {@link WasmBench}, keeping whatever kept it from doing
 * its work, so the bench gives no figures of an engine that had stopped merging: the first error its runner
 * told (an exception, after which it goes on, or an {@link Error}, which ends its thread), how many more it
 * told, and a thread that ended before {@link #close()} without telling one (Agrona's runner ends an agent
 * silently on an interrupt or an expected {@code AgentTerminationException}). It prints nothing:
 * {@link #close()}, then {@link #failure()}, tells the bench all of it, from the whole run up to the
 * scanner's last step.
 *
 * <p>Thread safety: {@link #start}, {@link #close()} and {@link #failure()} on the bench's thread; the
 * scanner's thread only records.
 */
final class BenchScanner implements AutoCloseable {

    private static final String FAILED = "the engine's scanner failed during the bench, so it gives no figures: ";

    private final AtomicReference<Throwable> first = new AtomicReference<>();
    private final AtomicLong more = new AtomicLong();
    private final AgentRunner runner;
    /** Set before the runner is closed: its thread ending from then on was asked to. */
    private volatile boolean closing;
    private volatile boolean endedEarly;

    private BenchScanner(Agent scanner) {
        runner = new AgentRunner(new SleepingMillisIdleStrategy(1), this::told, null, scanner);
    }

    /** Starts {@code scanner} on a thread named for its role, idling 1 ms when it has nothing to do. */
    static BenchScanner start(Agent scanner) {
        BenchScanner started = new BenchScanner(scanner);
        AgentRunner.startOnThread(started.runner, work -> new Thread(() -> started.runToTheEnd(work)));
        return started;
    }

    private void told(Throwable thrown) {
        if (!first.compareAndSet(null, thrown)) {
            more.incrementAndGet();
        }
    }

    private void runToTheEnd(Runnable work) {
        try {
            work.run();
        } catch (Throwable rethrown) {
            // An Error the runner told (told) before rethrowing it: kept there, not printed again.
        } finally {
            if (!closing) {
                endedEarly = true;
            }
        }
    }

    /** Stops the scanner and waits for its thread to end; again, does nothing. */
    @Override
    public void close() {
        closing = true;
        runner.close();
    }

    /**
     * After {@link #close()}: why the scanner did not do its work throughout, as the bench reports it (the
     * first error its cause), or null if it ran to the close without an error.
     */
    IllegalStateException failure() {
        Throwable thrown = first.get();
        if (thrown == null) {
            return endedEarly ? new IllegalStateException(FAILED + "its thread ended early without an error "
                    + "(an interrupt, or the agent asked to end)") : null;
        }
        long others = more.get();
        return new IllegalStateException(FAILED + thrown + (others == 0 ? "" : " (and " + others + " more errors)"),
                thrown);
    }

    /**
     * After {@link #close()}: what the bench throws when it failed with {@code benchFailure}: that, if the
     * scanner did not fail; else the scanner's {@link #failure()}, naming {@code benchFailure} too, which it
     * carries as suppressed. The scanner comes first: it may explain the bench's failure, and no figures stand.
     */
    RuntimeException failedToo(RuntimeException benchFailure) {
        IllegalStateException scanner = failure();
        if (scanner == null) {
            return benchFailure;
        }
        IllegalStateException both = new IllegalStateException(scanner.getMessage() + "; the bench then failed too: "
                + benchFailure, scanner.getCause());
        both.addSuppressed(benchFailure);
        return both;
    }
}
