package io.samepage.daemon;

import java.util.concurrent.TimeUnit;
import org.agrona.concurrent.Agent;

/**
 * The daemon's second agent, beside the engine's scanner: it updates the counters file, values and
 * heartbeat, at least every {@code publishIntervalMillis}. It does nothing else, so the heartbeat says
 * whether the daemon is alive; the live sources are re-read by the {@link Refresher}, on its own thread.
 *
 * <p>Not thread safe: its runner's thread is the only one that calls it, and the counters file's single
 * writer while the daemon runs.
 */
final class Publisher implements Agent {

    private final CountersFile counters;
    private final DaemonMetrics published;
    private final long publishIntervalNanos;
    /** The longest sleep: a close waits for it; with an interval of an hour it waited 5 s, then interrupted. */
    private static final long MAX_IDLE_MILLIS = 100;

    private final long idleMillis;
    private long lastPublishNanos;

    Publisher(CountersFile counters, DaemonMetrics published, long publishIntervalMillis) {
        this.counters = counters;
        this.published = published;
        this.publishIntervalNanos = TimeUnit.MILLISECONDS.toNanos(publishIntervalMillis);
        this.idleMillis = Math.clamp(publishIntervalMillis / 10, 1, MAX_IDLE_MILLIS);
        this.lastPublishNanos = System.nanoTime();
    }

    /**
     * How long to sleep when there is nothing to do: a tenth of the publish interval, so it is kept, and
     * at most {@value #MAX_IDLE_MILLIS} ms, so a close (which waits for the sleep) is not held up either.
     */
    long idleMillis() {
        return idleMillis;
    }

    @Override
    public int doWork() {
        long now = System.nanoTime();
        if (now - lastPublishNanos < publishIntervalNanos) {
            return 0;
        }
        counters.update(published.counterValues(), System.currentTimeMillis());
        lastPublishNanos = now;
        return 1;
    }

    @Override
    public String roleName() {
        return "samepage-daemon-publisher";
    }
}
