package io.samepage.core;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.samepage.hashing.Pages;
import java.util.SplittableRandom;
import java.util.concurrent.locks.ReentrantLock;
import org.junit.jupiter.api.Test;

/**
 * What a scanner thread's second half asks before it files a page without its lock ({@link
 * DeferredFiling}): does the key's unstable shard hold anything the page could pair with? Two pages of
 * other bytes under one key put one of them in the shard's collision tree; a key that neither the table
 * nor the tree holds still has nothing to pair with. Before, any collision in the shard answered "maybe"
 * for every key: a shard of half a million unique pages holds a few colliding 32-bit keys, so every
 * unique page of a steady scan took the locked path, a page at a time.
 */
class CollidingUnstableKeysTest {

    private static final int PAGE = Pages.PAGE_SIZE;

    @Test
    void aKeyNeitherTheTableNorTheCollisionTreeHoldsHasNothingToPairWith() {
        EngineContext context = new EngineContext().poolBytes(1 << 20).hashSeed(3);
        try (DedupEngine engine = DedupEngine.create(context.conclude())) {
            MergeDomain domain = engine.createDomain("d");
            Guest guest = engine.createGuest(domain, "g", 3L * PAGE);
            byte[] bytes = new byte[3 * PAGE];
            new SplittableRandom(5).nextBytes(bytes);      // three pages of different bytes
            guest.write(0, bytes, 0, bytes.length);
            int collided = 0x0800_0001;
            int other = 0x0800_0002;
            assertEquals(UnstableShards.shardOf(collided), UnstableShards.shardOf(other), "one shard");
            PageTable table = guest.table();
            table.setKey(0, collided);
            table.setKey(1, collided);
            table.setKey(2, other);
            ReentrantLock lock = domain.unstableLock(collided);
            lock.lock();
            try {
                domain.putUnstable(collided, table, 0);
                domain.putUnstable(collided, table, 1);        // other bytes under a filed key: the tree
                assertFalse(domain.unstableHoldsNothingFor(collided), "the table holds page 0 under it");
                assertTrue(domain.unstableHoldsNothingFor(other), "nothing under the other key, in table or tree");
                domain.removeUnstable(collided, table, 0);
                assertFalse(domain.unstableHoldsNothingFor(collided), "the tree still holds page 1 under it");
                domain.putUnstable(other, table, 2);
                assertFalse(domain.unstableHoldsNothingFor(other), "the table holds page 2 under it");
            } finally {
                lock.unlock();
            }
        }
    }
}
