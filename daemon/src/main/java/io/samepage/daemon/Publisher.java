package io.samepage.daemon;

import java.util.concurrent.TimeUnit;
import org.agrona.concurrent.Agent;

/**
 * The daemon's second agent, beside the engine's scanner: it updates the counters file at least every
 * {@code publishIntervalMillis} and rebuilds the live sources' guests every
 * {@code estimateIntervalSeconds}. A re-read can take a while (it copies whole processes); the
 * counters wait for it, and the scanner, on its own thread, does not.
 *
 * <p>Not thread safe: its runner's thread is the only one that calls it, and the counters file's single
 * writer while the daemon runs.
 */
final class Publisher implements Agent {

    private final CountersFile counters;
    private final DaemonMetrics published;
    private final DaemonGuests guests;
    private final long publishIntervalNanos;
    private final long estimateIntervalNanos;
    private final long idleMillis;
    private long lastPublishNanos;
    private long nextRefreshNanos;

    Publisher(CountersFile counters, DaemonMetrics published, DaemonGuests guests, long publishIntervalMillis,
            long estimateIntervalSeconds) {
        this.counters = counters;
        this.published = published;
        this.guests = guests;
        this.publishIntervalNanos = TimeUnit.MILLISECONDS.toNanos(publishIntervalMillis);
        this.estimateIntervalNanos = TimeUnit.SECONDS.toNanos(estimateIntervalSeconds);
        this.idleMillis = Math.max(1, publishIntervalMillis / 10);
        long now = System.nanoTime();
        this.lastPublishNanos = now;
        this.nextRefreshNanos = now + estimateIntervalNanos;
    }

    /** How long to sleep when there is nothing to do: a tenth of the publish interval, so it is kept. */
    long idleMillis() {
        return idleMillis;
    }

    @Override
    public int doWork() {
        int work = 0;
        if (guests.hasLiveSources() && System.nanoTime() - nextRefreshNanos >= 0) {
            try {
                guests.refreshLive();
            } finally {
                nextRefreshNanos = System.nanoTime() + estimateIntervalNanos;
            }
            work++;
        }
        long now = System.nanoTime();
        if (now - lastPublishNanos >= publishIntervalNanos) {
            counters.update(published.counterValues(), System.currentTimeMillis());
            lastPublishNanos = now;
            work++;
        }
        return work;
    }

    @Override
    public String roleName() {
        return "samepage-daemon-publisher";
    }
}
