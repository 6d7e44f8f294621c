package io.samepage.core;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import io.samepage.hashing.PageHasher;
import io.samepage.hashing.Pages;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.IdentityHashMap;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.SplittableRandom;
import java.util.stream.LongStream;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Guests created and destroyed by the thousand between two full-scan starts, as a WebAssembly host
 * with short-lived instances does (one engine guest, at least one chunk of {@link PageIds#CHUNK_PAGES}
 * page ids, per linear memory) while the scanner runs at a KSM-like rate: {@value #CHURN_PER_BATCH} guests
 * created between two batches (5,000 a second at a batch every 20 ms), and resident guests large enough
 * that a full scan takes about 6,000 batches (two minutes). The residents are mostly never written, so
 * that they cost no frames; the scanner passes such pages by at a 64th of a visit each ({@link
 * ScanCursor}), so the long full scan's batches have a budget of {@value #LONG_SCAN_BATCH} visit: 64
 * pages passed by a batch.
 *
 * <p>A destroyed guest's ids may come back only where no unstable index names one of its pages: so
 * the guests that come and go between two batches, never visited, must give theirs back at once, or
 * 524,288 chunks run out within one full scan ({@link DedupException.Kind#POOL_EXHAUSTED}); and a
 * guest filed in an index must keep its own until the next full scan starts. Two merge domains hold
 * the same contents and a hasher of three values puts them under colliding keys, so an id reused by
 * the other domain while still named would be found. After every step: every live guest reads back
 * what it wrote, no frame of a written page is mapped in two domains, and every page id an unstable
 * index names belongs to a guest that was live when the current full scan started (a guest made
 * since was never filed, so its ids were someone else's). {@link EngineInvariants} every
 * {@value #INVARIANTS_EVERY} steps. Even seeds scan on two threads ({@code scan_threads}). Replay a
 * seed with {@code -Dsamepage.seed=N}.
 */
class GuestChurnBetweenFullScansTest {

    private static final int PAGE = Pages.PAGE_SIZE;
    /** The long full scan's budget per batch (a batch every sleep_millisecs, 20 ms): 64 never-written pages. */
    private static final int LONG_SCAN_BATCH = 1;
    /** Guests created between two batches in the long full scan; most are destroyed before the next. */
    private static final int CHURN_PER_BATCH = 100;
    /** Pages of each of two resident guests, mostly never written: a full scan of ~6,000 batches of 64 pages. */
    private static final int BIG_PAGES = 192_000;
    /** Steps of short full scans first (a batch of 512 pages, 20 guests a step) whose guests live longer. */
    private static final int SHORT_SCAN_STEPS = 800;
    private static final int INVARIANTS_EVERY = 500;
    /**
     * Chunks of ids ever handed out at once, at most: the guests live at once and those filed since the
     * last full scan started hold a few thousand; churn that never got its ids back takes all 524,288.
     */
    private static final int MAX_CHUNKS_IN_USE = 16_384;
    private static final int CONTENTS = 8;

    static LongStream seeds() {
        return Seeds.orReplay(LongStream.of(1, 2));
    }

    @ParameterizedTest(name = "seed {0}")
    @MethodSource("seeds")
    void churnBetweenTwoFullScanStartsNeitherExhaustsIdsNorCrossesDomains(long seed) {
        new Run(seed).execute();
    }

    /** A live guest, the pages it wrote, and the step it is destroyed at. */
    private record Live(Guest guest, Map<Integer, byte[]> written, long diesAt) {
    }

    private static final class Run {
        private final long seed;
        private final SplittableRandom rnd;
        private final PageHasher hasher = new WeakHashers.Few(3);
        private final DedupEngine engine;
        private final List<MergeDomain> domains = new ArrayList<>();
        private final byte[][] contents = new byte[CONTENTS][PAGE];
        private final List<Live> live = new ArrayList<>();
        private final List<Live> residents = new ArrayList<>();
        /** The guests live when the current full scan started: the only ones it may have filed. */
        private Set<Guest> round = Collections.newSetFromMap(new IdentityHashMap<>());
        private boolean roundOpen;
        private long fullScansSeen;
        private long step;
        private String phase = "setup";
        private int created;
        private int highestChunk;
        /** Steps at which an index named a destroyed guest's page: the quarantine was needed. */
        private int namedDestroyedSteps;

        Run(long seed) {
            this.seed = seed;
            this.rnd = new SplittableRandom(seed);
            this.engine = DedupEngine.create(new EngineContext().poolBytes(64L << 20).hashSeed(seed)
                    .customHasher(hasher).conclude());
            engine.knobs().scanThreads(seed % 2 == 0 ? 2 : 1);     // 2: pages filed in a batch's second half too
            for (int c = 0; c < CONTENTS; c++) {
                rnd.nextBytes(contents[c]);
                contents[c][0] = (byte) c;      // keys c % 3: contents collide under each key
            }
        }

        void execute() {
            try (engine) {
                domains.add(engine.createDomain("a"));
                domains.add(engine.createDomain("b"));
                for (MergeDomain domain : domains) {
                    resident(domain, 8);
                }
                phase = "short full scans";
                for (int s = 0; s < SHORT_SCAN_STEPS; s++) {
                    step(512, 20, this::shortLifetime);
                }
                phase = "long full scan";
                for (MergeDomain domain : domains) {
                    resident(domain, BIG_PAGES);
                }
                long start = engine.scanner().fullScans();
                long longStart = -1;
                long longCreated = 0;
                long longBatches = 0;
                while (engine.scanner().fullScans() < start + 2) {
                    boolean first = engine.scanner().fullScans() == start + 1 && longStart < 0;
                    if (first) {
                        longStart = step;
                        longCreated = created;
                    }
                    step(LONG_SCAN_BATCH, CHURN_PER_BATCH, this::quickLifetime);
                    longBatches = longStart < 0 ? 0 : step - longStart;
                    assertTrue(step < 50_000, where() + ": the full scan never ended");
                }
                EngineInvariants.assertConsistent(engine, hasher, where() + ", at the end");
                System.out.printf("seed %d: the full scan over the resident guests took %d batches (%.0f s at one per"
                        + " 20 ms); %d guests were created during it; at most %d chunks of ids were in use; an"
                        + " index named a destroyed guest's page at %d steps%n", seed, longBatches,
                        longBatches * 0.02, created - longCreated, highestChunk, namedDestroyedSteps);
                assertTrue(longBatches > 5_500, where() + ": the full scan was meant to be long, it took " + longBatches);
                assertTrue(namedDestroyedSteps > 0, where() + ": no filed guest was destroyed, the quarantine was not exercised");
                assertTrue(engine.scanner().merges() > 0, where() + ": nothing merged, so nothing was proved");
            }
        }

        /** Phase one: half the guests go before the next batch, some live through several short full scans. */
        private long shortLifetime() {
            int r = rnd.nextInt(100);
            return r < 50 ? 0 : r < 90 ? 1 + rnd.nextInt(10) : 10 + rnd.nextInt(60);
        }

        /** Phase two: nearly every guest goes before the next batch. */
        private long quickLifetime() {
            int r = rnd.nextInt(100);
            return r < 97 ? 0 : r < 99 ? 1 + rnd.nextInt(5) : 1 + rnd.nextInt(200);
        }

        private void step(int batch, int churn, java.util.function.LongSupplier lifetime) {
            step++;
            if (!roundOpen) {
                round = Collections.newSetFromMap(new IdentityHashMap<>());
                round.addAll(engine.guests());      // this batch starts the next full scan with them
                roundOpen = true;
            }
            engine.scanner().scanBatch(batch);
            if (engine.scanner().fullScans() != fullScansSeen) {
                fullScansSeen = engine.scanner().fullScans();
                roundOpen = false;
            }
            for (int c = 0; c < churn; c++) {
                churnGuest(lifetime.getAsLong());
            }
            if (rnd.nextInt(20) == 0) {
                Live resident = residents.get(rnd.nextInt(residents.size()));
                write(resident, rnd.nextInt(8));
            }
            for (Iterator<Live> it = live.iterator(); it.hasNext(); ) {
                Live l = it.next();
                if (l.diesAt() <= step) {
                    l.guest().destroy();
                    it.remove();
                }
            }
            check();
        }

        private void resident(MergeDomain domain, int pages) {
            Live l = create(domain, pages, Long.MAX_VALUE);
            residents.add(l);
            for (int page = 0; page < 8; page++) {
                write(l, page);
            }
        }

        private void churnGuest(long lifetime) {
            MergeDomain domain = domains.get(rnd.nextInt(domains.size()));
            int pages = rnd.nextInt(64) == 0 ? PageIds.CHUNK_PAGES + 1 : 1 + rnd.nextInt(16);
            Live l = create(domain, pages, step + lifetime);
            for (int w = 1 + rnd.nextInt(2); w > 0; w--) {
                write(l, rnd.nextInt(Math.min(pages, 16)));
            }
        }

        private Live create(MergeDomain domain, int pages, long diesAt) {
            Guest guest;
            try {
                guest = engine.createGuest(domain, "g" + created, (long) pages * PAGE);
            } catch (DedupException e) {
                throw new AssertionError(where() + ": guest " + created + " of " + pages + " pages (" + live.size()
                        + " live, " + highestChunk + " chunks handed out at most): " + e.getMessage(), e);
            }
            created++;
            int end = (guest.table().basePageId() >>> PageIds.CHUNK_SHIFT) + (pages + PageIds.CHUNK_PAGES - 1) / PageIds.CHUNK_PAGES;
            highestChunk = Math.max(highestChunk, end);
            assertTrue(highestChunk <= MAX_CHUNKS_IN_USE, where() + ": " + highestChunk + " chunks of page ids in use");
            Live l = new Live(guest, new HashMap<>(), diesAt);
            live.add(l);
            return l;
        }

        private void write(Live l, int page) {
            byte[] bytes;
            if (rnd.nextInt(10) < 7) {
                bytes = contents[rnd.nextInt(CONTENTS)];
            } else {
                bytes = new byte[PAGE];
                rnd.nextBytes(bytes);
            }
            l.guest().write((long) page * PAGE, bytes, 0, PAGE);
            l.written().put(page, bytes);
        }

        private void check() {
            Map<Integer, MergeDomain> frameDomain = new HashMap<>();
            byte[] read = new byte[PAGE];
            for (Live l : live) {
                Guest guest = l.guest();
                for (Map.Entry<Integer, byte[]> w : l.written().entrySet()) {
                    int page = w.getKey();
                    guest.read((long) page * PAGE, read, 0, PAGE);
                    assertArrayEquals(w.getValue(), read, where() + ": " + guest.name() + " page " + page + " reads back what it wrote");
                    MergeDomain before = frameDomain.putIfAbsent(guest.frameAt(page), guest.domain());
                    if (before != null && before != guest.domain()) {
                        fail(where() + ": " + guest.name() + " page " + page + " maps frame " + guest.frameAt(page)
                                + ", mapped in " + before + " too: a merge crossed domains");
                    }
                }
            }
            boolean[] namedDestroyed = new boolean[1];
            for (MergeDomain domain : domains) {
                domain.forEachUnstableId(id -> {
                    Guest owner = engine.pageOwner(id);
                    assertNotNull(owner, where() + ": " + domain + "'s unstable index names page id " + id + ", which is free");
                    if (!round.contains(owner)) {
                        fail(where() + ": " + domain + "'s unstable index names page id " + id + ", now of " + owner
                                + " (" + owner.domain() + "), made after the full scan started: the id was reused while named");
                    }
                    namedDestroyed[0] |= owner.isDestroyed();
                });
            }
            namedDestroyedSteps += namedDestroyed[0] ? 1 : 0;
            if (step % INVARIANTS_EVERY == 0) {
                EngineInvariants.assertConsistent(engine, hasher, where());
            }
        }

        private String where() {
            return "seed " + seed + ", step " + step + " (" + phase + ", full scan " + engine.scanner().fullScans() + ")";
        }
    }
}
