package io.samepage.bench;

import io.samepage.core.DedupEngine;
import io.samepage.core.EngineContext;
import io.samepage.core.EngineCounters;
import io.samepage.core.Guest;
import io.samepage.core.MergeDomain;
import io.samepage.hashing.Pages;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.SplittableRandom;

/**
 * The guest memory the engine benchmarks work on, made the same way by every one of them.
 *
 * <p><b>Half duplicated.</b> An even number of guests in one merge domain; guests {@code 2k} and
 * {@code 2k+1} are partners. Every even page of a guest is <em>duplicated</em>: it has one twin, the
 * same page of the partner guest. Every odd page is <em>unique</em>. Page contents are random from
 * {@link #SEED}: each page is filled from a {@link SplittableRandom} seeded with a mix of the seed and
 * the page's content key, so a twin gets the same bytes and everything else differs. Once merged,
 * half of the pages are unique ({@code pages_unshared}), and each twin pair shares one frame
 * ({@code pages_shared = pages_sharing = pages / 4}), so merging frees a quarter of the frames.
 *
 * <p>The engine is built with the knobs' defaults ({@code max_page_sharing=256}, no zero-page merging)
 * except {@code smart_scan}, which the caller chooses, and a fixed hash seed.
 */
final class EngineWorkload {

    /** Seed of every page's content and of the engine's hash key. */
    static final long SEED = 0x5CA9_5EEDL;

    /** Headroom over the guests' size in the frame pool: room for copy-on-write breaks in flight. */
    static final long POOL_HEADROOM_BYTES = 64L << 20;

    private static final long UNIQUE_TAG = 1L << 62;

    private EngineWorkload() {
    }

    /** An engine whose pool holds {@code guestBytes} of private frames plus headroom. */
    static DedupEngine engine(long guestBytes, boolean smartScan) {
        EngineContext context = new EngineContext().poolBytes(guestBytes + POOL_HEADROOM_BYTES).hashSeed(SEED);
        context.knobs().smartScan(smartScan);
        return DedupEngine.create(context.conclude());
    }

    /** Creates {@code guests} guests of {@code guestBytes} in one domain and writes the half-duplicated content. */
    static Guest[] writeHalfDuplicated(DedupEngine engine, int guests, long guestBytes) {
        if (guests % 2 != 0) {
            throw new IllegalArgumentException("the half-duplicated workload pairs guests: need an even count, not " + guests);
        }
        MergeDomain domain = engine.createDomain("bench");
        Guest[] created = new Guest[guests];
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment page = arena.allocate(Pages.PAGE_SIZE, Pages.PAGE_SIZE);
            for (int g = 0; g < guests; g++) {
                created[g] = engine.createGuest(domain, "vm" + g, guestBytes);
                int pages = created[g].pageCount();
                for (int p = 0; p < pages; p++) {
                    fillPage(page, halfDuplicatedKey(g, p));
                    created[g].write((long) p << Pages.PAGE_SHIFT, page);
                }
            }
        }
        return created;
    }

    /** The content key of page {@code page} of guest {@code guest}: twins share it, unique pages do not. */
    static long halfDuplicatedKey(int guest, int page) {
        return page % 2 == 0 ? (long) (guest >>> 1) << 32 | page : UNIQUE_TAG | (long) guest << 32 | page;
    }

    /** Fills 4 KiB of {@code page} with the random content of {@code key}. */
    static void fillPage(MemorySegment page, long key) {
        SplittableRandom random = new SplittableRandom(mix(SEED ^ key));
        for (long off = 0; off < Pages.PAGE_SIZE; off += Long.BYTES) {
            page.set(ValueLayout.JAVA_LONG_UNALIGNED, off, random.nextLong());
        }
    }

    /**
     * Throws unless the engine holds the half-duplicated workload of {@code pages} guest pages fully
     * merged: every twin pair on one frame, every unique page in the unstable index, nothing volatile.
     */
    static EngineCounters requireConverged(DedupEngine engine, long pages, String when) {
        EngineCounters c = requireMerged(engine, pages, when);
        if (c.pagesUnshared() != pages / 2 || c.pagesVolatile() != 0) {
            throw new IllegalStateException(when + ": expected all " + pages / 2 + " unique pages in the unstable index"
                    + " (pages_unshared) and none volatile, got " + c);
        }
        return c;
    }

    /**
     * Throws unless every twin pair of the half-duplicated workload of {@code pages} guest pages shares
     * one frame and nothing else is shared. (With {@code smart_scan} on, skipped unique pages are not in
     * the unstable index, so {@code pages_unshared} is not checked.)
     */
    static EngineCounters requireMerged(DedupEngine engine, long pages, String when) {
        EngineCounters c = engine.counters();
        long pairs = pages / 4;
        if (c.pagesShared() != pairs || c.pagesSharing() != pairs || c.framesInUse() != pages - pairs + 1) {
            throw new IllegalStateException(when + ": the engine did not merge the half-duplicated workload of "
                    + pages + " pages; expected pages_shared = pages_sharing = " + pairs + " and "
                    + (pages - pairs + 1) + " frames in use, got " + c);
        }
        return c;
    }

    /** Murmur3's 64-bit finalizer: neighbouring keys give unrelated seeds. */
    static long mix(long z) {
        z = (z ^ (z >>> 33)) * 0xFF51_AFD7_ED55_8CCDL;
        z = (z ^ (z >>> 33)) * 0xC4CE_B9FE_1A85_EC53L;
        return z ^ (z >>> 33);
    }
}
