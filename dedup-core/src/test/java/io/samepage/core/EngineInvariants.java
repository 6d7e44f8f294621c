package io.samepage.core;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import io.samepage.hashing.PageHasher;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * The engine's structural invariants, checked through its package-private view of page tables,
 * frames and indexes. Only for a quiescent engine: no guest access and no scan may run meanwhile.
 *
 * <ul>
 *   <li>A page is private (its own frame, refcount 1, mapped by nothing else), stable (a frame in its
 *       domain's stable index, whose refcount is its number of mappers), zero-merged (its domain's
 *       zero frame) or never written (its domain's zero frame, no flag).</li>
 *   <li>No frame is mapped by pages of two domains, and no page maps another domain's zero frame:
 *       nothing merges across domains.</li>
 *   <li>Each domain's {@code pages_shared} is the number of stable frames its pages map and its
 *       {@code pages_sharing} the mappers beyond the first of each, so the sum of its guests'
 *       {@code merging_pages} is {@code pages_shared + pages_sharing}.</li>
 *   <li>Each domain's stable index holds exactly the stable frames its pages map: none left filed once
 *       unmapped (free, or withheld).</li>
 *   <li>{@code framesInUse} is the zero frames plus the private and stable frames mapped plus the frames
 *       withheld ({@code framesWithheld}: in use for good, mapped by nothing).</li>
 *   <li>No stable frame has more mappers than {@code max_page_sharing} (which cannot change while
 *       frames are shared), and none with fewer stands among its content's full frames, where a lookup
 *       would not see its room ({@link DuplicateFrames}).</li>
 *   <li>A stable frame still hashes to the value it was indexed under: it was never written.</li>
 *   <li>One content, one place: the stable frames of one content (bytes and key) of a domain are all on
 *       the hash chain's side (the chained frame and its duplicates) or all at one node of the collision
 *       tree ({@link CollidingFrames}), never some here and some there, where a lookup would look at both.</li>
 *   <li>Every frame in the resident registry is mapped and in its domain's stable index; every zero
 *       frame holds zeros, so every zero-merged page reads zeros.</li>
 *   <li>Each live page's byte for the unstable index is 1 exactly when its domain's unstable index
 *       files it, once (a filed page may since have been written, merged or released: its next visit
 *       takes it out); the index files no other page but a destroyed guest's, and {@code pages_unshared}
 *       counts what it files ({@link UnstableFiling}).</li>
 *   <li>The counters kept incrementally equal a recount: tracked pages per guest, pages_volatile,
 *       stable_node_chains and stable_node_dups grouped by content (and key, which equal content
 *       always shares under a real hash).</li>
 * </ul>
 */
public final class EngineInvariants {

    private EngineInvariants() {
    }

    /** Checks every invariant above, rechecking stable frames' hashes with the hasher {@code context} gives the scanner. */
    public static void assertConsistentWithHasherOf(EngineContext context, DedupEngine engine, String where) {
        assertConsistent(engine, context.newScannerHasher(), where);
    }

    /**
     * Checks every invariant above.
     *
     * @param hasher a hasher equal to the scanner's, to recheck stable frames' hashes; null to skip
     * @param where  prefixed to every failure message (seed, step, operation)
     */
    public static void assertConsistent(DedupEngine engine, PageHasher hasher, String where) {
        FramePool pool = engine.pool();
        Set<Integer> zeroFrames = new HashSet<>();
        zeroFrames.add(FramePool.ZERO_FRAME);       // in use from the start, before any domain maps it
        for (MergeDomain domain : engine.domains()) {
            zeroFrames.add(domain.zeroFrame());
        }
        Map<Integer, MergeDomain> owner = new HashMap<>();
        Map<Integer, Integer> stableMappers = new HashMap<>();
        Set<Integer> privateFrames = new HashSet<>();
        Map<MergeDomain, Long> domainMerging = new HashMap<>();
        long zeroMerged = 0;
        List<Guest> guests = engine.guests();
        for (Guest guest : guests) {
            MergeDomain domain = guest.domain();
            long merging = 0;
            long zero = 0;
            for (int page = 0; page < guest.pageCount(); page++) {
                int frame = guest.frameAt(page);
                int state = guest.stateAt(page);
                boolean stable = (state & PageTable.STABLE) != 0;
                boolean zeroMergedPage = (state & PageTable.ZERO_MERGED) != 0;
                String problem = null;
                if (stable && zeroMergedPage) {
                    problem = "is both stable and zero-merged";
                } else if (frame == domain.zeroFrame()) {
                    problem = stable ? "is stable but maps its domain's zero frame" : null;
                    zero += zeroMergedPage ? 1 : 0;
                } else if (zeroMergedPage) {
                    problem = "is zero-merged but maps a frame other than its zero frame";
                } else if (zeroFrames.contains(frame)) {
                    problem = "maps another domain's zero frame";
                } else if (owner.putIfAbsent(frame, domain) != null && owner.get(frame) != domain) {
                    problem = "maps a frame that pages of " + owner.get(frame) + " map too";
                } else if (stable) {
                    merging++;
                    stableMappers.merge(frame, 1, Integer::sum);
                    problem = privateFrames.contains(frame) ? "maps a stable frame that is also a private frame" : null;
                } else if (!privateFrames.add(frame) || stableMappers.containsKey(frame)) {
                    problem = "maps a private frame that another page maps too";
                } else if (pool.table().refCount(frame) != 1) {
                    problem = "maps a private frame whose refcount is " + pool.table().refCount(frame);
                }
                if (problem != null) {
                    fail(where + ": " + guest.name() + " (" + domain + ") page " + page + " (frame " + frame
                            + ", state 0x" + Integer.toHexString(state) + ") " + problem);
                }
            }
            GuestCounters counters = guest.counters();
            assertEquals(merging, counters.mergingPages(), where + ": merging_pages of " + guest.name());
            assertEquals(zero, counters.zeroPages(), where + ": zero_pages of " + guest.name());
            domainMerging.merge(domain, merging, Long::sum);
            zeroMerged += zero;
        }
        Map<MergeDomain, long[]> sharedAndSharing = new HashMap<>();
        for (Map.Entry<Integer, Integer> e : stableMappers.entrySet()) {
            int frame = e.getKey();
            MergeDomain domain = owner.get(frame);
            String at = where + ": stable frame " + frame + " of " + domain;
            assertEquals(e.getValue().intValue(), pool.table().refCount(frame), at + ": refcount against mappers");
            int maxSharing = engine.knobs().maxPageSharing();
            assertTrue(e.getValue() <= maxSharing,
                    at + ": " + e.getValue() + " mappers, more than max_page_sharing " + maxSharing);
            assertTrue(inStableIndex(domain, pool, frame), at + " is missing from its domain's stable index");
            if (hasher != null) {
                assertEquals(pool.table().stableKey(frame), MergeDomain.keyOf(hasher.hash(pool.memory(), FramePool.offsetOf(frame))),
                        at + " no longer hashes to the value it is indexed under: it was written in place");
            }
            long[] counts = sharedAndSharing.computeIfAbsent(domain, d -> new long[2]);
            counts[0]++;
            counts[1] += e.getValue() - 1;
        }
        long shared = 0;
        long sharing = 0;
        for (MergeDomain domain : engine.domains()) {
            int maxSharing = engine.knobs().maxPageSharing();
            int hidden = withRoomAmongFull(domain, maxSharing);
            if (hidden >= 0) {
                fail(where + ": stable frame " + hidden + " of " + domain + " maps " + pool.table().refCount(hidden)
                        + " pages, fewer than max_page_sharing " + maxSharing + ", but stands among full frames");
            }
            long[] counts = sharedAndSharing.getOrDefault(domain, new long[2]);
            assertEquals(counts[0], stableFrames(domain), where + ": frames in the stable index of " + domain
                    + " against the stable frames its pages map");
            assertEquals(counts[0], domain.pagesShared(), where + ": pages_shared of " + domain);
            assertEquals(counts[1], domain.pagesSharing(), where + ": pages_sharing of " + domain);
            assertEquals(domain.pagesShared() + domain.pagesSharing(), domainMerging.getOrDefault(domain, 0L),
                    where + ": merging_pages of the guests of " + domain + " against its pages_shared + pages_sharing");
            shared += counts[0];
            sharing += counts[1];
        }
        EngineCounters c = engine.counters();
        assertEquals(shared, c.pagesShared(), where + ": engine pages_shared");
        assertEquals(sharing, c.pagesSharing(), where + ": engine pages_sharing");
        assertEquals(zeroMerged, c.ksmZeroPages(), where + ": ksm_zero_pages");
        assertTrue(c.pagesVolatile() >= 0 && c.pagesUnshared() >= 0, where + ": negative counter in " + c);
        assertTrue(c.stableNodeDups() >= 2 * c.stableNodeChains(), where + ": chains and dups in " + c);
        assertEquals(zeroFrames.size() + privateFrames.size() + stableMappers.size() + c.framesWithheld(),
                engine.framesInUse(), where + ": framesInUse against zero, private and stable frames mapped, and "
                        + "frames withheld");
        assertEquals(c.framesInUse(), engine.framesInUse(), where + ": framesInUse in the counters");
        assertRecount(engine, stableMappers, where);
        assertUnstableFiling(engine, where);
    }

    /** The unstable index against each live page's bit for it (the invariant above). */
    private static void assertUnstableFiling(DedupEngine engine, String where) {
        long filed = 0;
        for (MergeDomain domain : engine.domains()) {
            Map<Integer, Integer> named = new HashMap<>();
            domain.forEachFiledUnstableId(id -> named.merge(id, 1, Integer::sum));
            filed += named.values().stream().mapToLong(Integer::longValue).sum();
            for (Guest guest : engine.guests()) {
                if (guest.domain() != domain) {
                    continue;
                }
                PageTable table = guest.table();
                for (int page = 0; page < guest.pageCount(); page++) {
                    Integer times = named.remove(table.basePageId() + page);
                    boolean bit = table.inUnstable(page);
                    String at = where + ": " + guest.name() + " page " + page + " (state 0x"
                            + Integer.toHexString(guest.stateAt(page)) + ")";
                    if ((times == null ? 0 : times) != (bit ? 1 : 0)) {
                        fail(at + " is filed " + (times == null ? 0 : times) + " times in the unstable index of " + domain
                                + ", but its mark says " + (bit ? "filed" : "not filed"));
                    }
                }
            }
            for (int id : named.keySet()) {
                Guest owner = engine.pageOwner(id);
                assertTrue(owner == null || owner.isDestroyed(), where + ": the unstable index of " + domain
                        + " files page id " + id + " of " + owner + ", a guest of another domain or none");
            }
        }
        assertEquals(filed, engine.counters().pagesUnshared(), where + ": pages_unshared against the pages the unstable indexes file");
    }

    private static int withRoomAmongFull(MergeDomain domain, int maxSharing) {
        domain.stableLock().lock();
        try {
            return domain.stableWithRoomAmongFull(maxSharing);
        } finally {
            domain.stableLock().unlock();
        }
    }

    private static int stableFrames(MergeDomain domain) {
        domain.stableLock().lock();
        try {
            return domain.stableFrames();
        } finally {
            domain.stableLock().unlock();
        }
    }

    private static int stablePlaceOf(MergeDomain domain, int frame) {
        domain.stableLock().lock();
        try {
            return domain.stablePlaceOf(frame);
        } finally {
            domain.stableLock().unlock();
        }
    }

    private static String placeName(int place) {
        return place == StableIndex.NONE ? "the hash chain" : "the collision tree's node " + place;
    }

    private static boolean inStableIndex(MergeDomain domain, FramePool pool, int frame) {
        domain.stableLock().lock();
        try {
            return domain.inStableIndex(frame);
        } finally {
            domain.stableLock().unlock();
        }
    }

    /**
     * The counters kept incrementally against a recount from the page tables: tracked pages, and
     * stable_node_chains/dups grouped by the bytes of the stable frames (never by hash).
     */
    private static void assertRecount(DedupEngine engine, Map<Integer, Integer> stableMappers, String where) {
        FramePool pool = engine.pool();
        long tracked = 0;
        for (Guest guest : engine.guests()) {
            long own = 0;
            for (int page = 0; page < guest.pageCount(); page++) {
                int state = guest.stateAt(page);
                if (guest.isMerged(page) || (state & PageTable.VISITED) != 0 && (state & PageTable.HOLE) == 0
                        && guest.frameAt(page) != guest.domain().zeroFrame()) {
                    own++;
                }
            }
            assertEquals(own, guest.trackedPages(), where + ": tracked pages of " + guest.name() + " against a recount");
            tracked += own;
        }
        Map<java.nio.ByteBuffer, Integer> byContent = new HashMap<>();
        Map<java.nio.ByteBuffer, int[]> placeOfContent = new HashMap<>();
        for (int frame : stableMappers.keySet()) {
            byte[] bytes = pool.memory().asSlice(FramePool.offsetOf(frame), io.samepage.hashing.Pages.PAGE_SIZE)
                    .toArray(java.lang.foreign.ValueLayout.JAVA_BYTE);
            // Grouped by domain, bytes and the key the frame is filed under: for a real hash equal bytes have
            // equal keys; a test hasher unrelated to the content files equal bytes apart, unreachable
            // from each other, which KSM would not count as one chain either.
            MergeDomain filedIn = null;
            for (MergeDomain domain : engine.domains()) {
                filedIn = inStableIndex(domain, pool, frame) ? domain : filedIn;
            }
            java.nio.ByteBuffer content = java.nio.ByteBuffer.allocate(bytes.length + 8).put(bytes)
                    .putInt(filedIn == null ? -1 : filedIn.id()).putInt(pool.table().stableKey(frame)).flip();
            byContent.merge(content, 1, Integer::sum);
            if (filedIn != null) {
                int place = stablePlaceOf(filedIn, frame);
                int[] first = placeOfContent.putIfAbsent(content, new int[] {place, frame});
                if (first != null && first[0] != place) {
                    fail(where + ": stable frames " + first[1] + " and " + frame + " of one content of " + filedIn
                            + " are filed in two places: " + placeName(first[0]) + " and " + placeName(place));
                }
            }
        }
        long chains = 0;
        long dups = 0;
        for (int frames : byContent.values()) {
            if (frames > 1) {
                chains++;
                dups += frames;
            }
        }
        EngineCounters c = engine.counters();
        assertEquals(chains, c.stableNodeChains(), where + ": stable_node_chains against a recount by content");
        assertEquals(dups, c.stableNodeDups(), where + ": stable_node_dups against a recount by content");
        long expectedVolatile = Math.max(0, tracked - c.pagesShared() - c.pagesSharing() - c.pagesUnshared() - c.ksmZeroPages());
        assertEquals(expectedVolatile, c.pagesVolatile(), where + ": pages_volatile against a recount");
        for (MergeDomain domain : engine.domains()) {
            assertTrue(io.samepage.hashing.Pages.isZeroPage(pool.memory(), FramePool.offsetOf(domain.zeroFrame())),
                    where + ": the zero frame of " + domain + " holds zeros");
            domain.stableLock().lock();
            try {
                domain.forEachRegistered(frame -> assertTrue(stableMappers.containsKey(frame) && domain.inStableIndex(frame),
                        where + ": registered frame " + frame + " of " + domain + " is mapped and stable"));
            } finally {
                domain.stableLock().unlock();
            }
        }
    }
}
