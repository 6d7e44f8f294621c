package io.samepage.core;

import static org.junit.jupiter.api.Assertions.assertTrue;

import io.samepage.hashing.Pages;
import org.junit.jupiter.api.Test;

/**
 * Keys crafted to share their low bits, as a hash whose values can be chosen (CRC32C) allows, against
 * the stable index: they must not share a bucket, nor pass its unlocked filter as a group. Placed by
 * their low bits, all 4,000 shared one bucket (a chain of 4,000 that every lookup walked), and every
 * unfiled key of the same form passed the filter. The unstable index's side: {@code UnstableIndexTest}.
 */
class KeyPlacementTest {

    private static final int FILED = 4_000;
    private static final int LOW = 0x5EED;

    @Test
    void stableKeysThatShareTheirLowBitsDoNotShareABucketOrTheFilter() {
        try (FramePool pool = new FramePool((long) (FILED + 1) * Pages.PAGE_SIZE)) {
            StableIndex index = new StableIndex(pool, new PageCompare(pool.memory()), 42);
            assertTrue(pool.tryReserve(FILED));
            for (int i = 0; i < FILED; i++) {
                index.add(pool.allocateReserved(), i << 16 | LOW);
            }
            for (int i = 0; i < FILED; i++) {
                assertTrue(index.mayHoldUnlocked(i << 16 | LOW) && index.mayHold(i << 16 | LOW), "key " + i);
            }
            assertTrue(index.longestChain() < 16, "a bucket chains " + index.longestChain() + " of " + FILED);
            int passed = 0;
            for (int i = FILED; i < 1 << 15; i++) {
                passed += index.mayHoldUnlocked(i << 16 | LOW) ? 1 : 0;
            }
            int asked = (1 << 15) - FILED;
            assertTrue(passed < asked / 20, passed + " of " + asked + " unfiled crafted keys passed the filter");
        }
    }
}
