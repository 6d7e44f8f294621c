package io.samepage.daemon;

import io.samepage.core.DedupEngine;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.Consumer;
import org.agrona.CloseHelper;
import org.agrona.ErrorHandler;
import org.agrona.concurrent.Agent;
import org.agrona.concurrent.AgentRunner;
import org.agrona.concurrent.SleepingMillisIdleStrategy;

/**
 * Starts the daemon's agents (its scanner, publisher, refresher and KSM policy loop), each on an Agrona
 * {@link AgentRunner} thread named for its role, and tells when one of them stops for good.
 *
 * <p>An agent that throws an exception goes on after the daemon's error handler is told of it. An
 * {@link Error} (out of memory, a fault in a memory access) is told the same way, but then Agrona's runner
 * rethrows it and the thread ends: the daemon would run on without, say, its scanner, publishing counters
 * that no longer move, with one notice line in its log to say why. Agrona ends a thread in other ways
 * too, some without telling the error handler: an agent's {@code onStart} that throws, an
 * {@link org.agrona.concurrent.AgentTerminationException}, an interrupt ({@code InterruptedException}
 * included), or an error handler that throws. So whatever ends an agent's thread before {@link #close()}
 * becomes the daemon's {@link #failure()}, the first if several do, a {@link DaemonException.Kind#FAILED}
 * naming the thread and what ended it, and the fatal error handler hears of it once, on the dying thread,
 * to close the daemon ({@code samepage daemon} exits 1). The dying thread prints no stack trace: the error
 * handler has told the error already, or the failure carries it.
 *
 * <p>Thread safety: agents start and {@link #close()} runs on one thread at a time (launch, then the
 * daemon's close); {@link #failure()} is safe from any thread.
 */
final class DaemonAgents implements AutoCloseable {

    private final ErrorHandler errorHandler;
    private final Consumer<DaemonException> fatalErrorHandler;
    private final AtomicReference<DaemonException> failure = new AtomicReference<>();
    private final List<AgentRunner> runners = new ArrayList<>();
    /** Set before the runners are closed: a thread that ends from then on was asked to. */
    private volatile boolean closing;

    DaemonAgents(ErrorHandler errorHandler, Consumer<DaemonException> fatalErrorHandler) {
        this.errorHandler = Objects.requireNonNull(errorHandler, "errorHandler");
        this.fatalErrorHandler = Objects.requireNonNull(fatalErrorHandler, "fatalErrorHandler");
    }

    /** Starts the engine's scanner, the publisher, and the refresher and KSM policy loop unless null, in that order. */
    void startAll(DedupEngine engine, Publisher publisher, Refresher refresher, KsmPolicyAgent policy) {
        start(engine.scanner(), Math.clamp(engine.knobs().sleepMillis(), 1, 20));
        start(publisher, publisher.idleMillis());
        if (refresher != null) {
            start(refresher, Refresher.idleMillis());
        }
        if (policy != null) {
            start(policy, KsmPolicyAgent.idleMillis());
        }
    }

    /** Starts {@code agent} on a thread of its own, idling {@code idleMillis} when it has nothing to do. */
    void start(Agent agent, long idleMillis) {
        AtomicReference<Throwable> told = new AtomicReference<>();     // the last error its runner told
        AgentRunner runner = new AgentRunner(new SleepingMillisIdleStrategy(idleMillis), thrown -> {
            told.set(thrown);
            errorHandler.onError(thrown);
        }, null, agent);
        // Listed before its thread starts: listed after, a list that could not grow (an OutOfMemoryError)
        // left a thread running that no close stopped. A runner whose thread never started closes at once.
        runners.add(runner);
        AgentRunner.startOnThread(runner, work -> new Thread(() -> runToTheEnd(work, told)));
    }

    /**
     * The error that stopped one of the agents' threads for good, the first if several did, as a
     * {@link DaemonException.Kind#FAILED} whose cause it is; null while every agent runs.
     */
    DaemonException failure() {
        return failure.get();
    }

    /** Stops the agents, the last started first, and waits for their threads to end. */
    @Override
    public void close() {
        closing = true;
        CloseHelper.closeAll(runners.reversed());
    }

    /**
     * Runs an agent's runner on its thread, to the end: what ends it before {@link #close()} (an Error the
     * runner rethrew after telling it, an error handler that threw, or the runner returning) is a failure.
     */
    private void runToTheEnd(Runnable work, AtomicReference<Throwable> told) {
        Throwable thrown = null;
        try {
            work.run();
        } catch (Throwable t) {
            thrown = t;
        }
        if (closing) {
            return;
        }
        String thread = Thread.currentThread().getName();
        Throwable last = told.get();
        String how = thrown != null ? " on " + DaemonException.oneLine(thrown)
                : last != null ? " after " + DaemonException.oneLine(last)
                : " (its agent ended without an error: an interrupt, or it asked to end)";
        DaemonException stopped = new DaemonException(DaemonException.Kind.FAILED, thread + " stopped" + how
                + "; the daemon no longer does that thread's work: restart it", thrown != null ? thrown : last);
        if (failure.compareAndSet(null, stopped)) {
            fatalErrorHandler.accept(stopped);
        }
    }
}
