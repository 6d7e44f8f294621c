package io.samepage.core;

import java.time.Duration;
import java.util.Map;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * Waits for a test's thread with a bound, so that a deadlock fails the test, with every thread's stack,
 * instead of hanging the build. The bound is not a timing assertion: it is many times a normal run's.
 */
final class Watchdog {

    /** The default bound on one thread of a concurrency test. */
    static final Duration HANG_GUARD = Duration.ofMinutes(2);

    private Watchdog() {
    }

    /** {@link #await(Future, String, Duration)} within {@link #HANG_GUARD}. */
    static <T> T await(Future<T> future, String what) throws InterruptedException {
        return await(future, what, HANG_GUARD);
    }

    /**
     * The thread's result; its failure rethrown as an {@link AssertionError} naming {@code what}; or, if it
     * has not ended within {@code bound}, an {@link AssertionError} with every thread's stack.
     */
    static <T> T await(Future<T> future, String what, Duration bound) throws InterruptedException {
        try {
            return future.get(bound.toMillis(), TimeUnit.MILLISECONDS);
        } catch (ExecutionException e) {
            throw new AssertionError(what + " failed: " + e.getCause(), e.getCause());
        } catch (TimeoutException e) {
            throw new AssertionError(what + " did not end in " + bound + ": a deadlock or a lost wake-up; threads:"
                    + stacks());
        }
    }

    static String stacks() {
        StringBuilder stacks = new StringBuilder();
        for (Map.Entry<Thread, StackTraceElement[]> t : Thread.getAllStackTraces().entrySet()) {
            stacks.append('\n').append(t.getKey()).append(' ').append(t.getKey().getState());
            for (StackTraceElement frame : t.getValue()) {
                stacks.append("\n    at ").append(frame);
            }
        }
        return stacks.toString();
    }
}
