package io.samepage.core;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.samepage.hashing.Pages;
import java.util.HashSet;
import java.util.Set;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/**
 * The stable index's unlocked filter ({@link StableIndex#mayHoldUnlocked}): it must say "may" for every
 * filed key (a "no" there would hide a merge for good), and should say it rarely for other keys, since
 * each wrong "may" costs a unique page the domain's lock and, on several scanner threads, a read of its
 * bytes; and a page a steady scan keeps filed is taken out of the unstable index and filed again.
 */
class StableFilterTest {

    private static final int FILED = 20_000;
    private static final int PROBES = 200_000;

    @Test
    void saysMayForEveryFiledKeyAndRarelyForOthers() {
        try (FramePool pool = new FramePool((long) (FILED + 1) * Pages.PAGE_SIZE)) {
            StableIndex index = new StableIndex(pool, new PageCompare(pool.memory()), 42);
            SplittableRandom random = new SplittableRandom(7);
            Set<Integer> keys = new HashSet<>();
            assertTrue(pool.tryReserve(FILED));
            for (int i = 0; i < FILED; i++) {
                int key;
                do {
                    key = random.nextInt();
                } while (!keys.add(key));
                index.add(pool.allocateReserved(), key);
            }
            for (int key : keys) {
                assertTrue(index.mayHoldUnlocked(key), "filed key " + key + " must pass the filter");
            }
            int wrong = 0;
            int asked = 0;
            while (asked < PROBES) {
                int key = random.nextInt();
                if (!keys.contains(key)) {
                    asked++;
                    wrong += index.mayHoldUnlocked(key) ? 1 : 0;
                }
            }
            // Six bits in a 64-bit word a bucket, about two keys a bucket: 18 of 200,000 wrong. Four bits
            // were wrong for 51, two for 489; one bit in 16 for 1 key in 8 to 16.
            assertTrue(wrong < PROBES / 5000, wrong + " of " + PROBES + " unfiled keys passed the filter");
        }
    }

    /**
     * Removals leave their keys' bits (a removal allocates nothing, so it cannot fail midway) and the next
     * filing rebuilds the filter: removed keys then rarely pass it, the filed ones always do.
     */
    @Test
    void theFilingAfterManyRemovalsRebuildsTheFilter() {
        int filed = 2_000;
        try (FramePool pool = new FramePool((long) (filed + 2) * Pages.PAGE_SIZE)) {
            StableIndex index = new StableIndex(pool, new PageCompare(pool.memory()), 42);
            SplittableRandom random = new SplittableRandom(11);
            assertTrue(pool.tryReserve(filed + 1));
            int[] frames = new int[filed];
            int[] keys = new int[filed];
            for (int i = 0; i < filed; i++) {
                frames[i] = pool.allocateReserved();
                keys[i] = random.nextInt();
                index.add(frames[i], keys[i]);
            }
            for (int i = 0; i < filed - 1; i++) {
                assertTrue(index.remove(frames[i]));
            }
            for (int i = 0; i < filed - 1; i++) {
                assertTrue(index.mayHoldUnlocked(keys[i]), "a removal leaves its key's bits");
            }
            index.add(pool.allocateReserved(), random.nextInt());
            int stale = 0;
            for (int i = 0; i < filed - 1; i++) {
                stale += index.mayHoldUnlocked(keys[i]) ? 1 : 0;
            }
            assertTrue(stale < filed / 20, stale + " of " + (filed - 1) + " removed keys passed the rebuilt filter");
            assertTrue(index.mayHoldUnlocked(keys[filed - 1]), "the key still filed passes");
        }
    }

    /**
     * The locked answer ({@link StableIndex#mayHold}) is exact by key even once two contents share one:
     * it asks the colliding contents' tree by key. Before, any colliding content made it "may" for every
     * key, and at a few hundred thousand contents 32-bit keys always collide somewhere (ScanBenchmark's
     * workload holds about eight such pairs), so a steady scan's filed page that the filter wrongly
     * matched was taken out of the unstable index and filed again every scan.
     */
    @Test
    void theLockedAnswerIsExactByKeyWithCollidingContents() {
        try (FramePool pool = new FramePool(4L * Pages.PAGE_SIZE)) {
            StableIndex index = new StableIndex(pool, new PageCompare(pool.memory()), 42);
            assertTrue(pool.tryReserve(3));
            int chained = pool.allocateReserved();
            int colliding = pool.allocateReserved();
            int other = pool.allocateReserved();
            for (int frame : new int[] {chained, colliding, other}) {
                pool.memory().asSlice(FramePool.offsetOf(frame), Pages.PAGE_SIZE).fill((byte) (frame + 1));
            }
            index.add(chained, 7);
            index.add(colliding, 7);            // other bytes, the same key: the colliding contents' tree
            index.add(other, 9);
            assertTrue(index.mayHold(7) && index.mayHold(9), "filed keys");
            assertFalse(index.mayHold(8), "no content has key 8, colliding contents or not");
            assertTrue(index.remove(chained));
            assertTrue(index.mayHold(7), "the colliding content still holds key 7 once the chained one left");
            assertTrue(index.remove(colliding));
            assertFalse(index.mayHold(7), "none does now");
        }
    }
}
