package io.samepage.testing;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicLong;

/**
 * The counter that code rewritten by {@link AllocationFaultLoader} calls before each allocation: it
 * counts them, and throws {@link OutOfMemoryError} at the one it was armed for, as the JVM would if the
 * heap ran out there. One allocation fails, not every one after it: the code's clean-up after the error
 * runs as it would once the collector found room again ({@link #failFrom} fails every one after it too,
 * and {@link #failFromWithOneError} throws one and the same error at each, as the JVM itself does).
 *
 * <p>One instance per JVM (the rewritten code calls it statically), so at most one test drives it at a
 * time. Thread safe: scanner threads may count too; with more than one, which allocation is the k-th
 * depends on their interleaving. The parent class loader must load this class, so that the rewritten
 * code and the test see one counter.
 */
public final class AllocationFaults {

    /**
     * What the message of what {@link #beforeAllocation} throws starts with: "injected at " then the site
     * (or, for {@link #failFromWithOneError}, the allocation's number).
     */
    public static final String MESSAGE_PREFIX = "injected at ";

    private static final AtomicLong passed = new AtomicLong();
    private static volatile long failAt;
    /** Set by {@link #failFrom}: every allocation from the armed one on fails, not that one alone. */
    private static volatile boolean persistent;
    /** Set by {@link #failFromWithOneError}: the error every failure throws; null for a new one each. */
    private static volatile OutOfMemoryError oneError;
    private static volatile String injectedAt;
    /** Sites passed in order, while recording; read only once the run is over. */
    private static volatile List<String> recorded;

    private AllocationFaults() {
    }

    /**
     * Called by rewritten code just before an allocation at {@code site} ({@code Class.method:line}).
     * Allocates nothing unless it throws, or while recording.
     *
     * @throws OutOfMemoryError at the allocation {@link #failAt} armed
     */
    public static void beforeAllocation(String site) {
        long n = passed.incrementAndGet();
        List<String> sites = recorded;
        if (sites != null) {
            synchronized (AllocationFaults.class) {
                sites.add(site);
            }
        }
        long k = failAt;
        if (n == k) {
            injectedAt = site;
            throw failure(site);
        }
        if (k > 0 && n > k && persistent) {
            throw failure(site);
        }
    }

    private static OutOfMemoryError failure(String site) {
        OutOfMemoryError one = oneError;
        return one != null ? one : new OutOfMemoryError(MESSAGE_PREFIX + site);
    }

    /** Counts from zero again, fails nowhere and forgets the last injection. */
    public static void reset() {
        failAt = 0;
        persistent = false;
        oneError = null;
        injectedAt = null;
        recorded = null;
        passed.set(0);
    }

    /**
     * From zero again, and fails the {@code k}-th allocation from now (1 the first); 0 never fails. While
     * recording ({@link #record}), the sites noted so far are dropped: they are noted from here.
     *
     * @throws IllegalArgumentException if {@code k} is negative
     */
    public static void failAt(long k) {
        arm(k, false, null);
    }

    /**
     * As {@link #failAt}, but every allocation after the {@code k}-th fails too, until {@link #disarm}: a
     * heap that stays full, for code whose clean-up after the error allocates. {@link #injectedAt} names
     * the {@code k}-th.
     *
     * @throws IllegalArgumentException if {@code k} is negative
     */
    public static void failFrom(long k) {
        arm(k, true, null);
    }

    /**
     * As {@link #failFrom}, but every failure throws one and the same {@link OutOfMemoryError}, the one
     * returned, as HotSpot does: it never makes a new error for a full heap but throws a preallocated one,
     * and once its four with a stack trace are used up (they are never replaced) the same instance every
     * time. So a clean-up that runs out of heap after the failure did throws the failure itself again. The
     * error is made before the k-th site is known, so its message names k ({@link #injectedAt} the site).
     *
     * @throws IllegalArgumentException if {@code k} is negative
     */
    public static OutOfMemoryError failFromWithOneError(long k) {
        OutOfMemoryError one = new OutOfMemoryError(MESSAGE_PREFIX + "allocation " + k
                + " and every one after it, one error for all");
        arm(k, true, one);
        return one;
    }

    private static void arm(long k, boolean fromThenOn, OutOfMemoryError one) {
        if (k < 0) {
            throw new IllegalArgumentException("allocation number " + k + ": must be 1 or more, or 0 for none");
        }
        synchronized (AllocationFaults.class) {
            failAt = 0;
            injectedAt = null;
            passed.set(0);
            recorded = recorded == null ? null : new ArrayList<>();
            persistent = fromThenOn;
            oneError = one;
            failAt = k;
        }
    }

    /** Fails no allocation from now on; the count goes on. */
    public static void disarm() {
        failAt = 0;
    }

    /** From zero again, failing nowhere, and notes every site passed until {@link #recordedSites}. */
    public static void record() {
        reset();
        recorded = new ArrayList<>();
    }

    /** The sites passed since {@link #record}, the k-th at index k - 1; stops recording. */
    public static List<String> recordedSites() {
        synchronized (AllocationFaults.class) {
            List<String> sites = recorded == null ? List.of() : List.copyOf(recorded);
            recorded = null;
            return sites;
        }
    }

    /** Allocations passed since the last {@link #reset}, {@link #failAt} or {@link #record}. */
    public static long count() {
        return passed.get();
    }

    /** The site where the armed failure was thrown, or null if it was not reached. */
    public static String injectedAt() {
        return injectedAt;
    }
}
