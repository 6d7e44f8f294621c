package io.samepage.core;

import java.util.concurrent.locks.ReentrantLock;
import java.util.concurrent.locks.StampedLock;

/**
 * The scanner's locks, taken by trying a while before waiting: its critical sections last about a
 * microsecond, and parking and waking a thread on a virtual machine cost ten times that. Uncontended
 * (one scanner thread), the first try takes the lock.
 */
final class SpinLocks {

    /** Tries before {@link #lock} waits, or {@link #tryWriteLock} gives up. */
    private static final int SPINS = 256;

    private SpinLocks() {
    }

    /** Takes an index lock, trying {@value #SPINS} times before it waits. */
    static void lock(ReentrantLock lock) {
        for (int spins = 0; spins < SPINS; spins++) {
            if (lock.tryLock()) {
                return;
            }
            Thread.onSpinWait();
        }
        lock.lock();
    }

    /**
     * Tries a candidate page's stripe {@value #SPINS} times, then gives up (0): another scanner thread or
     * a writer holds a stripe for about a microsecond. Never waits unboundedly, as the visited page's
     * stripe is held: two threads that each hold the stripe the other tries both give up.
     */
    static long tryWriteLock(StampedLock lock) {
        for (int spins = 0; spins < SPINS; spins++) {
            long stamp = lock.tryWriteLock();
            if (stamp != 0) {
                return stamp;
            }
            Thread.onSpinWait();
        }
        return 0;
    }
}
