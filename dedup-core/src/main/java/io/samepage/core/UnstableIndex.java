package io.samepage.core;

import java.util.Arrays;

/**
 * A domain's unstable index: candidate guest pages by key (the fast hash folded to 32 bits) and
 * content, for the current full scan. One shard of it ({@link UnstableShards}).
 *
 * <p>Two parts, as in {@link StableIndex}. A hash table of engine-wide page ids ({@link PageIds})
 * whose buckets chain entries of this index's own arrays: one {@code long} per bucket (the first
 * entry's key and number, and whether more follow: most lookups stop there) and one {@code long} per
 * entry (its page id and the next entry), so about 16 bytes per unique page, and the chain holds at
 * most one page per key. The links live here, not in the guests' page tables: with {@code
 * scan_threads}, each shard is changed by the thread that owns it, and links in the page tables would
 * make neighbouring pages, owned by different threads, pass cache lines between cores. A page whose key
 * the chain already holds (its bytes differed from that page's: a collision) goes into the {@link
 * ContentTree}, ordered by content, so n colliding pages cost O(log n) compares per lookup; a map from
 * its id to its tree node finds it again.
 *
 * <p>Like KSM's unstable tree this index is not kept exact: a page it names may have been written,
 * merged, zeroed or destroyed since it was filed. The scanner checks every candidate under the page's
 * lock and compares all 4096 bytes before it merges, so a stale entry costs a missed merge at worst,
 * and the whole index is emptied when the next full scan starts. Its chains stay sound meanwhile: an
 * entry's key is the one it was filed under (a page's key changes only when the scanner visits it, at
 * most once per full scan), and a destroyed guest's page ids are not reused before the index is emptied.
 * The tree reads candidates' frames without their locks (the pool's memory stays mapped; a stale read
 * only misplaces a page).
 *
 * <p>Thread safety: none; its shard's lock ({@link UnstableShards}) guards every call. Allocates only when it grows.
 */
final class UnstableIndex {

    static final int NONE = -1;
    private static final int MIN_BUCKETS = 64;
    private static final int MIN_ENTRIES = 16;

    private final PageIds ids;
    private final ContentTree tree;
    private final FirstLive firstLive = new FirstLive();
    /** An empty bucket: no entry is -1. */
    private static final long EMPTY = -1L;
    private long[] heads = emptyTable(MIN_BUCKETS);
    /** Per entry: its page id (high half; -1 once removed) and the next entry of its bucket (low half). */
    private long[] entries = new long[MIN_ENTRIES];
    /** Entries used since the index was emptied, removed ones included. */
    private int used;
    /** Pages chained (entries not removed). */
    private int chained;
    /** The tree node of each page in the collision tree, by page id; made on the first collision. */
    private org.agrona.collections.Int2IntHashMap treeNodes;

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
        int entry = chainedEntry(key);
        return entry == NONE ? NONE : idOf(entry);
    }

    private int chainedEntry(int key) {
        long head = heads[key & (heads.length - 1)];
        int entry = (int) head;
        if (entry == NONE || headHolds(head, key)) {
            return entry;
        }
        if (!headHasMore(head)) {
            return NONE;
        }
        for (entry = nextOf(entry); entry != NONE; entry = nextOf(entry)) {
            if (key(idOf(entry)) == key) {
                return entry;
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
        return tree.size() == 0 && chainedEntry(key) == NONE;
    }

    /** Files page {@code id}, whose page table already holds {@code key}, under {@code key}. */
    void put(int key, int id) {
        if (chainedEntry(key) != NONE) {
            if (treeNodes == null) {
                treeNodes = new org.agrona.collections.Int2IntHashMap(NONE);
            }
            treeNodes.put(id, tree.insert(id));
            return;
        }
        if (used == entries.length) {
            entries = Arrays.copyOf(entries, used + Math.max(MIN_ENTRIES, used / 2));
        }
        int entry = used++;
        int bucket = key & (heads.length - 1);
        int old = (int) heads[bucket];
        entries[entry] = entry(id, old);
        heads[bucket] = head(key, entry, old != NONE);
        if (++chained > 2 * heads.length) {
            rehash(2 * heads.length);
        }
    }

    /** Takes page {@code id}, filed under {@code key}, out; does nothing if it is not there. */
    void remove(int key, int id) {
        if (treeNodes != null && !treeNodes.isEmpty()) {
            int node = treeNodes.remove(id);
            if (node != NONE) {
                tree.markRemoved(node);
                return;
            }
        }
        int bucket = key & (heads.length - 1);
        int first = (int) heads[bucket];
        if (first != NONE && idOf(first) == id) {
            int after = nextOf(first);
            heads[bucket] = after == NONE ? EMPTY : head(key(idOf(after)), after, nextOf(after) != NONE);
            entries[first] = entry(NONE, NONE);
            chained--;
            return;
        }
        int previous = first;
        for (int at = first == NONE ? NONE : nextOf(first); at != NONE; at = nextOf(at)) {
            if (idOf(at) == id) {
                entries[previous] = entry(idOf(previous), nextOf(at));
                if (previous == first && nextOf(at) == NONE) {
                    heads[bucket] = head(key(idOf(first)), first, false);
                }
                entries[at] = entry(NONE, NONE);
                chained--;
                return;
            }
            previous = at;
        }
    }

    /** Empties the index: the start of a full scan. */
    void clear() {
        Arrays.fill(heads, EMPTY);
        used = 0;
        chained = 0;
        tree.clear();
        if (treeNodes != null) {
            treeNodes.clear();
        }
    }

    /** Pages filed (KSM's {@code pages_unshared}). */
    int size() {
        return chained + tree.size();
    }

    /** Bytes of the bucket table, the entries, the collision tree and its map. */
    long metadataBytes() {
        return 8L * heads.length + 8L * entries.length + tree.metadataBytes()
                + (treeNodes == null ? 0 : 8L * treeNodes.capacity());
    }

    private int key(int id) {
        Guest guest = ids.owner(id);
        return guest.table().key(id - guest.table().basePageId());
    }

    private int idOf(int entry) {
        return (int) (entries[entry] >>> 32);
    }

    private int nextOf(int entry) {
        return (int) entries[entry];
    }

    private static long entry(int id, int next) {
        return (long) id << 32 | (next & 0xFFFF_FFFFL);
    }

    private void rehash(int buckets) {
        long[] old = heads;
        heads = emptyTable(buckets);
        for (long head : old) {
            int entry = (int) head;
            while (entry != NONE) {
                int after = nextOf(entry);
                int id = idOf(entry);
                int key = key(id);
                int bucket = key & (buckets - 1);
                int next = (int) heads[bucket];
                entries[entry] = entry(id, next);
                heads[bucket] = head(key, entry, next != NONE);
                entry = after;
            }
        }
    }

    /**
     * A bucket's head: the first entry's key, its number, and whether more entries follow, so most
     * lookups read no page table. The key's lowest bit is the bucket's (there are at least 2 buckets), so that
     * bit holds the flag.
     */
    private static long head(int key, int entry, boolean more) {
        return (long) ((key & ~1) | (more ? 1 : 0)) << 32 | (entry & 0xFFFF_FFFFL);
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
