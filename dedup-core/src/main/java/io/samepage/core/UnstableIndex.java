package io.samepage.core;

import java.util.Arrays;

/**
 * A domain's unstable index: candidate guest pages by key (the fast hash folded to 32 bits) and
 * content, for the current full scan.
 *
 * <p>Two parts, as in {@link StableIndex}. A hash table of engine-wide page ids ({@link PageIds})
 * whose buckets are chains threaded through the pages' own link and key in their {@link Guest}'s page
 * table, one {@code long} per bucket (the first page's id and key: most lookups stop there) and one to
 * two pages per bucket, so at most 8 bytes per unique page beyond the page table's 16; the chain holds at most one page per key. A page whose key the
 * chain already holds (its bytes differed from that page's: a collision) goes into the
 * {@link ContentTree}, ordered by content, so n colliding pages cost O(log n) compares per lookup; its
 * link then holds {@code -2 - node}.
 *
 * <p>Like KSM's unstable tree this index is not kept exact: a page it names may have been written,
 * merged, zeroed or destroyed since it was filed. The scanner checks every candidate under the page's
 * lock and compares all 4096 bytes before it merges, so a stale entry costs a missed merge at worst,
 * and the whole index is emptied when the next full scan starts. Its chains stay sound meanwhile:
 * only the scanner writes the links and keys, a page is filed at most once per full scan, and a
 * destroyed guest's page ids are not reused before the index is emptied. The tree reads candidates'
 * frames without their locks (the pool's memory stays mapped; a stale read only misplaces a page).
 *
 * <p>Thread safety: none; its shard's lock ({@link UnstableShards}) guards every call. Allocates only when it grows.
 */
final class UnstableIndex {

    static final int NONE = -1;
    private static final int MIN_BUCKETS = 64;

    private final PageIds ids;
    private final ContentTree tree;
    private final FirstLive firstLive = new FirstLive();
    /** An empty bucket: no page id is -1. */
    private static final long EMPTY = -1L;
    private long[] heads = emptyTable(MIN_BUCKETS);
    private int chained;

    UnstableIndex(PageIds ids, PageCompare compare, long secret) {
        this.ids = ids;
        this.tree = new ContentTree(new ContentTree.Entries() {
            @Override
            public int key(int id) {
                Guest guest = ids.owner(id);
                return guest == null ? 0 : guest.table().key(id - guest.table().basePageId());
            }

            @Override
            public long offset(int id) {
                Guest guest = ids.owner(id);
                return guest == null ? -1 : FramePool.offsetOf(guest.frameAt(id - guest.table().basePageId()));
            }
        }, compare, secret);
    }

    /** The page id filed under {@code key} in the chain, or {@link #NONE}. */
    int chained(int key) {
        long head = heads[key & (heads.length - 1)];
        int id = (int) head;
        if (id == NONE || headHolds(head, key)) {
            return id;
        }
        if (!headHasMore(head)) {
            return NONE;
        }
        for (id = next(id); id != NONE; id = next(id)) {
            if (key(id) == key) {
                return id;
            }
        }
        return NONE;
    }

    /**
     * A page id in the collision tree whose key is {@code key} and whose bytes equal the page at
     * {@code offset}, read without its lock, or {@link #NONE}. O(log n) compares.
     */
    int colliding(int key, long offset) {
        return tree.size() == 0 ? NONE : tree.find(key, offset, firstLive);
    }

    /** True if no page is chained under {@code key} and the collision tree is empty: nothing to pair with. */
    boolean holdsNothingFor(int key) {
        return tree.size() == 0 && chained(key) == NONE;
    }

    /** Files page {@code id}, whose page table already holds {@code key}, under {@code key}. */
    void put(int key, int id) {
        Guest guest = ids.owner(id);
        int page = id - guest.table().basePageId();
        if (chained(key) != NONE) {
            guest.table().setUnstableNext(page, -2 - tree.insert(id));
            return;
        }
        int bucket = key & (heads.length - 1);
        int old = (int) heads[bucket];
        guest.table().setUnstableNext(page, old);
        heads[bucket] = head(key, id, old != NONE);
        if (++chained > 2 * heads.length) {
            rehash(2 * heads.length);
        }
    }

    /** Takes page {@code id}, filed under {@code key}, out; does nothing if it is not there. */
    void remove(int key, int id) {
        Guest owner = ids.owner(id);
        int link = owner.table().unstableNext(id - owner.table().basePageId());
        if (link <= -2) {
            tree.markRemoved(-2 - link);
            owner.table().setUnstableNext(id - owner.table().basePageId(), NONE);
            return;
        }
        int bucket = key & (heads.length - 1);
        int first = (int) heads[bucket];
        if (first == id) {
            int after = next(id);
            heads[bucket] = after == NONE ? EMPTY : head(key(after), after, next(after) != NONE);
            chained--;
            return;
        }
        int previous = first;
        for (int at = first == NONE ? NONE : next(first); at != NONE; at = next(at)) {
            if (at == id) {
                Guest before = ids.owner(previous);
                before.table().setUnstableNext(previous - before.table().basePageId(), next(at));
                if (previous == first && next(at) == NONE) {
                    heads[bucket] = head(key(first), first, false);
                }
                chained--;
                return;
            }
            previous = at;
        }
    }

    /** Empties the index: the start of a full scan. */
    void clear() {
        Arrays.fill(heads, EMPTY);
        chained = 0;
        tree.clear();
    }

    /** Pages filed (KSM's {@code pages_unshared}). */
    int size() {
        return chained + tree.size();
    }

    /** Bytes of the bucket table and the collision tree. */
    long metadataBytes() {
        return 8L * heads.length + tree.metadataBytes();
    }

    private int key(int id) {
        Guest guest = ids.owner(id);
        return guest.table().key(id - guest.table().basePageId());
    }

    private int next(int id) {
        Guest guest = ids.owner(id);
        return guest.table().unstableNext(id - guest.table().basePageId());
    }

    private void rehash(int buckets) {
        long[] old = heads;
        heads = emptyTable(buckets);
        for (long head : old) {
            int id = (int) head;
            while (id != NONE) {
                Guest guest = ids.owner(id);
                int page = id - guest.table().basePageId();
                int after = guest.table().unstableNext(page);
                int key = guest.table().key(page);
                int bucket = key & (buckets - 1);
                int next = (int) heads[bucket];
                guest.table().setUnstableNext(page, next);
                heads[bucket] = head(key, id, next != NONE);
                id = after;
            }
        }
    }

    /**
     * A bucket's head: the first page's key, its id, and whether more pages follow, so most lookups
     * read no page table. The key's lowest bit is the bucket's (there are at least 2 buckets), so that
     * bit holds the flag.
     */
    private static long head(int key, int id, boolean more) {
        return (long) ((key & ~1) | (more ? 1 : 0)) << 32 | (id & 0xFFFF_FFFFL);
    }

    private static boolean headHolds(long head, int key) {
        return ((int) (head >>> 32) & ~1) == (key & ~1);
    }

    private static boolean headHasMore(long head) {
        return (head & 1L << 32) != 0;
    }

    private static long[] emptyTable(int buckets) {
        long[] table = new long[buckets];
        Arrays.fill(table, EMPTY);
        return table;
    }

    /** Accepts the first live candidate the tree finds. */
    private static final class FirstLive implements ContentTree.Visitor {
        @Override
        public boolean accept(int id) {
            return true;
        }
    }
}
