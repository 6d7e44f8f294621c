package io.samepage.daemon;

import java.util.concurrent.TimeUnit;
import org.agrona.concurrent.Agent;

/**
 * The daemon's third agent, run only when it has live sources: it estimates them again from a fresh
 * read every {@code estimateIntervalSeconds} ({@link DaemonGuests#refreshLive()}). A re-read can take
 * seconds (it reads every resident page of whole processes), so it has a thread of its own: the scanner merges meanwhile and the {@link Publisher} keeps the counters
 * file's heartbeat beating, so a reader judging liveness by the heartbeat's age is not misled.
 *
 * <p>Thread safety: {@link #doWork} on its runner's thread only; {@link #estimateIntervalSeconds(long)}
 * from any thread (a reload), taking effect at the next check.
 */
final class Refresher implements Agent {

    private final DaemonGuests guests;
    private volatile long intervalNanos;
    private long lastRefreshNanos;

    Refresher(DaemonGuests guests, long estimateIntervalSeconds) {
        this.guests = guests;
        this.intervalNanos = TimeUnit.SECONDS.toNanos(estimateIntervalSeconds);
        this.lastRefreshNanos = System.nanoTime();
    }

    /** How long its runner sleeps between checks: a re-read is due at most this late. */
    static long idleMillis() {
        return 100;
    }

    /** Sets the interval between re-reads, at least 1 s; a shorter one takes effect at once. */
    void estimateIntervalSeconds(long seconds) {
        if (seconds < 1) {
            throw new IllegalArgumentException("estimate_interval_seconds must be at least 1, not " + seconds);
        }
        intervalNanos = TimeUnit.SECONDS.toNanos(seconds);
    }

    @Override
    public int doWork() {
        if (System.nanoTime() - lastRefreshNanos < intervalNanos) {
            return 0;
        }
        try {
            guests.refreshLive();
        } finally {
            lastRefreshNanos = System.nanoTime();
        }
        return 1;
    }

    @Override
    public String roleName() {
        return "samepage-daemon-refresher";
    }
}
