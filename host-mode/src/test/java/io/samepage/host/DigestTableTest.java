package io.samepage.host;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.HashMap;
import java.util.Map;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/**
 * {@link DigestTable} against a {@code HashMap} model, with digests that collide in the probe, and its
 * bytes per page. A failure names the seed; {@code -Dsamepage.seed=N} replays it.
 */
class DigestTableTest {

    private static final long SEED = Long.getLong("samepage.seed", System.nanoTime());

    private static String note() {
        return " (replay with -Dsamepage.seed=" + SEED + ")";
    }

    private record Key(long high, long low) {
    }

    @Test
    void countsAndSetsMatchAHashMapModelThroughGrowth() {
        SplittableRandom random = new SplittableRandom(SEED);
        for (int round = 0; round < 20; round++) {
            int pool = 1 + random.nextInt(20_000);
            long[] highs = new long[pool];
            long[] lows = new long[pool];
            for (int i = 0; i < pool; i++) {
                // Few distinct high words: many digests share a home slot and probe past each other.
                highs[i] = random.nextBoolean() ? random.nextLong() : random.nextInt(4) * 0x1000_0000_0000_0000L;
                lows[i] = random.nextInt(8) == 0 ? 0 : random.nextLong();
            }
            DigestTable table = new DigestTable(random.nextInt(pool + 1));
            Map<Key, long[]> model = new HashMap<>();
            int adds = random.nextInt(60_000);
            for (int t = 0; t < adds; t++) {
                int i = random.nextInt(pool);
                int slot = table.slotOf(highs[i], lows[i]);
                long[] expected = model.computeIfAbsent(new Key(highs[i], lows[i]), k -> new long[2]);
                assertEquals(expected[0], table.count(slot), "count before add " + t + note());
                assertEquals(expected[1], table.guestSet(slot), "set before add " + t + note());
                expected[0]++;
                expected[1] = random.nextInt(DigestTable.MAX_SET + 1);
                table.set(slot, expected[0], (int) expected[1]);
            }
            assertEquals(model.size(), table.size(), note());
            long[] pages = {0};
            table.forEach((count, set) -> pages[0] += count);
            assertEquals(adds, pages[0], note());
            for (Map.Entry<Key, long[]> e : model.entrySet()) {
                int slot = table.slotOf(e.getKey().high(), e.getKey().low());
                assertEquals(e.getValue()[0], table.count(slot), note());
                assertEquals(e.getValue()[1], table.guestSet(slot), note());
            }
        }
    }

    @Test
    void oneContentAddedAMillionTimesTakesOneSlot() {
        DigestTable table = new DigestTable(1_000_000);
        for (int t = 0; t < 1_000_000; t++) {
            int slot = table.slotOf(7, 7);
            table.set(slot, table.count(slot) + 1, 1);
        }
        assertEquals(1, table.size());
        assertEquals(1_000_000, table.count(table.slotOf(7, 7)));
    }

    @Test
    void atMost32BytesPerPageEvenWhenEveryPageIsDistinctAndMoreArriveThanExpected() {
        SplittableRandom random = new SplittableRandom(SEED);
        for (long expected : new long[] {2_000, 100_000, 300_000}) {
            for (double arriving : new double[] {0.5, 1.0, 1.3, 3.0}) {
                DigestTable table = new DigestTable(expected);
                long pages = (long) (expected * arriving);
                for (long p = 0; p < pages; p++) {
                    int slot = table.slotOf(random.nextLong(), random.nextLong());
                    table.set(slot, 1, 1);
                    long counted = Math.max(p + 1, expected);
                    assertTrue(table.bytes() <= 32 * counted + DigestTable.MIN_CAPACITY * DigestTable.SLOT_BYTES,
                            table.bytes() + " bytes for " + (p + 1) + " pages, " + expected + " expected" + note());
                }
                assertEquals(pages, table.size());
            }
        }
    }

    @Test
    void sizedForTheExpectedPagesWithoutPowerOfTwoSlack() {
        DigestTable table = new DigestTable(262_144);
        assertEquals(30.0 * 262_144, table.bytes(), 24, "24 bytes per slot at a load of 0.8");
    }
}
