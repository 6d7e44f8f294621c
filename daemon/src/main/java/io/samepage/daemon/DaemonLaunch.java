package io.samepage.daemon;

import io.samepage.core.DedupEngine;

/**
 * {@link Daemon#launch}'s steps, all or nothing: it opens, in this order, the counters file (claimed and
 * written under a temporary name), the engine with every file source loaded and the live ones estimated,
 * the metrics server, and the agents' threads; then it makes the {@link Daemon}, and last puts the counters
 * file into place, the one step after which nothing can fail. If a step throws (an
 * {@link OutOfMemoryError} too), what the steps before it opened is closed, the last first, and the
 * throwable is rethrown: no thread, no listening port, no mapping is left, and the counters file's path is
 * as it was.
 *
 * <p>What is opened is held in locals, not a list: adding to a list may allocate, and an
 * {@link OutOfMemoryError} there would leave the part just opened out of the clean-up. The clean-up
 * itself allocates nothing unless a close throws ({@link #close}).
 *
 * <p>Thread safety: stateless.
 */
final class DaemonLaunch {

    private DaemonLaunch() {
    }

    /** As {@link Daemon#launch}, which documents it. */
    static Daemon launch(Daemon.Context context) {
        if (!context.isConcluded()) {
            context.conclude();
        }
        context.claim();
        long startMillis = System.currentTimeMillis();
        CountersFile counters = CountersFile.prepare(context.countersFile(), context.countersFileIsDefault(),
                ProcessHandle.current().pid(), startMillis, context.noticeHandler());
        DedupEngine engine = null;
        MetricsServer metrics = null;
        DaemonAgents agents = null;
        try {
            KsmPolicyAgent policy = KsmPolicyAgent.of(context);
            DaemonGuests guests = DaemonGuests.load(context);
            engine = guests.engine();
            DaemonMetrics published = new DaemonMetrics(engine, startMillis);
            if (policy != null) {
                published.ksmPolicy(policy::last, policy::backoffs);
            }
            if (guests.hasLiveSources()) {
                published.liveSources(guests::liveEstimate);
            }
            metrics = MetricsServer.of(context, published::prometheusText, guests::sketchesJson);   // null if none
            counters.update(published.counterValues(), System.currentTimeMillis());
            agents = new DaemonAgents(context.errorHandler(), context.fatalErrorHandler());
            Refresher refresher = guests.hasLiveSources() ? new Refresher(guests, context.estimateIntervalSeconds()) : null;
            agents.startAll(engine, new Publisher(counters, published, context.publishIntervalMillis()), refresher, policy);
            Daemon daemon = new Daemon(context, engine, published, metrics, counters, agents, refresher, policy);
            counters.publish();
            return daemon;
        } catch (RuntimeException | Error e) {
            boolean interrupted = Thread.interrupted();     // cleared while closing: a close waits for its threads
            close(agents, e);
            close(metrics, e);
            close(engine, e);
            close(counters, e);
            if (interrupted) {
                Thread.currentThread().interrupt();
                throw new DaemonException(DaemonException.Kind.FAILED, DaemonService.LAUNCH_INTERRUPTED, e);
            }
            throw e;
        }
    }

    /**
     * Closes {@code closeable} unless null, and returns the first failure: {@code failure}, with what the
     * close threw added to it as suppressed, or what the close threw if {@code failure} is null. Allocates
     * nothing unless the close throws.
     */
    static Throwable close(AutoCloseable closeable, Throwable failure) {
        if (closeable != null) {
            try {
                closeable.close();
            } catch (Throwable t) {     // an Error too: the next part is closed all the same
                return firstOf(failure, t);
            }
        }
        return failure;
    }

    /**
     * {@code first}, with {@code next} suppressed in it, or {@code next} if there was none before. Never
     * throws: where the heap has no room for the suppressed list, {@code next} is lost and {@code first}
     * kept, so a clean-up after an OutOfMemoryError still closes the parts after this one.
     */
    static Throwable firstOf(Throwable first, Throwable next) {
        if (first == null) {
            return next;
        }
        if (first != next) {
            try {
                first.addSuppressed(next);
            } catch (OutOfMemoryError noRoom) {
                // next is lost; first, the failure that matters, is not
            }
        }
        return first;
    }
}
