package io.samepage.kvm;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.samepage.core.DedupEngine;
import io.samepage.core.MergeDomain;
import java.util.Arrays;
import java.util.SplittableRandom;
import java.util.stream.LongStream;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Mapped guests under the engine against plain byte arrays: random Java writes, zero fills, writes
 * straight into writable mappings (a KVM guest's, marked written now, later or never), writes to
 * read-only pages through the engine (a KVM write exit), scans, and reads both through the engine and
 * through each guest's own mappings. Every read must return the model's bytes: no write lost, torn or
 * leaked into another guest, whatever was merged; a merged page that were left writable would leak a
 * straight write into the other guests sharing its frame.
 *
 * <p>Each failure names the seed and the step; replay one with
 * {@code ./mvnw -pl kvm-integration test -Dtest=MappedModelTest -Dsamepage.seed=N}.
 */
class MappedModelTest {

    private static final int PAGE = MappedGuestMemory.PAGE_BYTES;
    private static final int GUESTS = 3;
    private static final int PAGES = 48;
    private static final int TEMPLATES = 6;
    private static final int STEPS = 3000;

    static LongStream seeds() {
        String replay = System.getProperty("samepage.seed", "").trim();
        return replay.isEmpty() ? LongStream.of(1, 2, 3) : LongStream.of(Long.parseLong(replay));
    }

    @ParameterizedTest(name = "seed {0}")
    @MethodSource("seeds")
    void everyReadThroughTheEngineOrTheMappingsReturnsTheLastWrite(long seed) {
        SplittableRandom random = new SplittableRandom(seed);
        byte[][] templates = new byte[TEMPLATES][PAGE];
        for (byte[] template : templates) {
            random.nextBytes(template);
        }
        try (DedupEngine engine = MappedEngineTest.engine("model-" + seed, GUESTS * PAGES * 2, MappingBudget.host())) {
            engine.knobs().useZeroPages(random.nextBoolean());
            MergeDomain domain = engine.createDomain("d");
            MappedGuest[] guests = new MappedGuest[GUESTS];
            byte[][] models = new byte[GUESTS][PAGES * PAGE];
            long[][] unmarked = new long[GUESTS][(PAGES + 63) / 64];
            for (int g = 0; g < GUESTS; g++) {
                guests[g] = MappedGuest.create(engine, domain, "vm" + g, (long) PAGES * PAGE);
            }
            for (int step = 0; step < STEPS; step++) {
                String where = "seed " + seed + ", step " + step;
                int g = random.nextInt(GUESTS);
                int page = random.nextInt(PAGES);
                int op = random.nextInt(100);
                if (op < 25) {                                       // Java write: a template page, or a few bytes
                    byte[] bytes = random.nextBoolean() ? templates[random.nextInt(TEMPLATES)] : randomBytes(random);
                    long address = bytes.length == PAGE ? (long) page * PAGE
                            : random.nextLong((long) PAGES * PAGE - bytes.length + 1);
                    guests[g].guest().write(address, bytes, 0, bytes.length);
                    System.arraycopy(bytes, 0, models[g], (int) address, bytes.length);
                } else if (op < 45) {                                // the KVM guest writes one page's bytes
                    byte[] bytes = random.nextInt(4) == 0 ? templates[random.nextInt(TEMPLATES)] : randomBytes(random);
                    int inPage = bytes.length == PAGE ? 0 : random.nextInt(PAGE - bytes.length + 1);
                    long address = (long) page * PAGE + inPage;
                    if (guests[g].memory().writable(page)) {
                        guests[g].memory().write(address, bytes, 0, bytes.length);
                        unmarked[g][page >>> 6] |= 1L << page;
                    } else {
                        guests[g].guest().write(address, bytes, 0, bytes.length);   // its write exit
                    }
                    System.arraycopy(bytes, 0, models[g], (int) address, bytes.length);
                } else if (op < 52) {                                // the dirty log is read: mark what it saw
                    if (random.nextInt(4) != 0) {
                        guests[g].guest().markWritten(unmarked[g]);
                    }
                    Arrays.fill(unmarked[g], 0);
                } else if (op < 60) {                                // a whole page zeroed
                    guests[g].guest().fill((long) page * PAGE, PAGE, (byte) 0);
                    Arrays.fill(models[g], page * PAGE, (page + 1) * PAGE, (byte) 0);
                } else if (op < 85) {
                    engine.scanner().scanBatch(1 + random.nextInt(3 * PAGES));
                } else {
                    int length = 1 + random.nextInt(2 * PAGE);
                    long address = random.nextLong((long) PAGES * PAGE - length + 1);
                    byte[] seen = new byte[length];
                    guests[g].guest().read(address, seen, 0, length);
                    assertArrayEquals(Arrays.copyOfRange(models[g], (int) address, (int) address + length), seen,
                            where + ": guest " + g + " read through the engine at " + address);
                    guests[g].memory().read(address, seen, 0, length);
                    assertArrayEquals(Arrays.copyOfRange(models[g], (int) address, (int) address + length), seen,
                            where + ": guest " + g + " read through its mappings at " + address);
                }
            }
            assertTrue(engine.scanner().merges() > 0, "seed " + seed + ": the run merged pages");
            for (int g = 0; g < GUESTS; g++) {
                assertArrayEquals(models[g], MappedEngineTest.readAll(guests[g].guest()), "seed " + seed + ": guest " + g);
                assertArrayEquals(models[g], MappedEngineTest.readAll(guests[g].memory()), "seed " + seed + ": guest "
                        + g + " through its mappings");
            }
        }
    }

    private static byte[] randomBytes(SplittableRandom random) {
        byte[] bytes = new byte[1 + random.nextInt(300)];
        random.nextBytes(bytes);
        return bytes;
    }
}
