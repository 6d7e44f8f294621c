package io.samepage.core;

import java.util.Arrays;

/**
 * A domain's unstable index: candidate guest pages by key (the fast hash folded to 32 bits) and
 * content, for the current full scan. One shard of it ({@link UnstableShards}).
 *
 * <p>Two parts. A table of one page per key: an open-addressed array of {@code long}s, each a filed
 * page's key and its engine-wide page id ({@link PageIds}), probed linearly from a home slot that
 * mixes the key with a per-engine secret ({@link KeyPlacement}: keys crafted to share their low bits
 * do not share a run), and kept at most three quarters full, so a lookup reads one or two cache lines
 * and never a page table: 11 to 21 bytes per unique page. (It replaced buckets that chained entries
 * through a second array and read each chained page's key from its page table: a lookup that missed
 * walked the chain, a cache miss or two per step, 10% of mode (b)'s merging scan in perf;
 * docs/perf/density.md.) A page whose key the table already holds (its bytes differed from that
 * page's: a collision) goes into the {@link ContentTree}, ordered by content, so n colliding pages
 * cost O(log n) compares per lookup; a map from its id to its tree node finds it again.
 *
 * <p>Like KSM's unstable tree this index may name a page written, merged, zeroed or destroyed since it
 * was filed, until the page's next visit takes it out ({@link UnstableFiling}). The scanner checks
 * every candidate under the page's lock and compares all 4096 bytes before it merges, so a stale entry
 * costs a missed merge at worst, and the whole index is emptied when the next full scan starts if a
 * destroyed guest's page or a removed tree node may be in it. Its table stays sound meanwhile: a
 * slot holds the key its page was filed under, and a destroyed guest whose page was filed keeps its
 * page ids until the index is emptied ({@link PageIds}).
 * The tree reads candidates' frames without their locks (the pool's memory stays mapped; a stale read
 * only misplaces a page).
 *
 * <p>Thread safety: none; its shard's lock ({@link UnstableShards}) guards every call. Allocates only when it grows.
 */
final class UnstableIndex {

    static final int NONE = -1;
    private static final int MIN_SLOTS = 64;
    /** An empty slot; no filed page is -1 (page ids are not negative). */
    private static final long EMPTY = -1L;

    private final ContentTree tree;
    private final FirstLive firstLive = new FirstLive();
    /** Mixed into every key before it is placed ({@link KeyPlacement}). */
    private final int placement;
    /** Per slot: a filed page's key (high half) and page id (low half), or {@link #EMPTY}. */
    private long[] slots = emptyTable(MIN_SLOTS);
    /** Pages in the table. */
    private int chained;
    /** The tree node of each page in the collision tree, by page id; made on the first collision. */
    private org.agrona.collections.Int2IntHashMap treeNodes;

    UnstableIndex(PageIds ids, PageCompare compare, long secret) {
        this.placement = KeyPlacement.secretOf(secret);
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

    /** The page id filed under {@code key} in the table, or {@link #NONE}. */
    int chained(int key) {
        int slot = slotOf(key);
        return slot == NONE ? NONE : idAt(slot);
    }

    /** The slot holding {@code key}, or {@link #NONE}. Ends: the table always has an empty slot. */
    private int slotOf(int key) {
        int mask = slots.length - 1;
        for (int slot = home(key, mask); ; slot = (slot + 1) & mask) {
            long held = slots[slot];
            if (held == EMPTY) {
                return NONE;
            }
            if (keyOf(held) == key) {
                return slot;
            }
        }
    }

    /**
     * A page id in the collision tree whose key is {@code key} and whose bytes equal the page at
     * {@code offset}, read without its lock, or {@link #NONE}. O(log n) compares.
     */
    int colliding(int key, long offset) {
        return tree.size() == 0 ? NONE : tree.find(key, offset, firstLive);
    }

    /**
     * True if no page is filed under {@code key}, in the table or the collision tree: nothing to pair
     * with. The tree is asked by key alone ({@link ContentTree#mayHoldKey}): a shard of half a million
     * unique pages holds a few colliding keys, and "any collision at all" sent every page of every shard
     * to the locked path.
     */
    boolean holdsNothingFor(int key) {
        return slotOf(key) == NONE && (tree.size() == 0 || !tree.mayHoldKey(key));
    }

    /** Files page {@code id}, whose page table already holds {@code key}, under {@code key}. */
    void put(int key, int id) {
        int mask = slots.length - 1;
        int slot = home(key, mask);
        for (long held; (held = slots[slot]) != EMPTY; slot = (slot + 1) & mask) {
            if (keyOf(held) == key) {
                if (treeNodes == null) {
                    treeNodes = new org.agrona.collections.Int2IntHashMap(NONE);
                }
                treeNodes.put(id, tree.insert(id));
                return;
            }
        }
        slots[slot] = slot(key, id);
        if (++chained > slots.length / 4 * 3) {
            rehash(2 * slots.length);
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
        int slot = slotOf(key);
        if (slot != NONE && idAt(slot) == id) {
            empty(slot);
            chained--;
        }
    }

    /**
     * Empties {@code hole} and moves back each later slot of its run that may sit there (its key's
     * home slot is not after the hole), so that every lookup still reaches its page with no empty
     * slot on the way (deletion by backward shift; no tombstones).
     */
    private void empty(int hole) {
        int mask = slots.length - 1;
        for (int next = (hole + 1) & mask; slots[next] != EMPTY; next = (next + 1) & mask) {
            int home = home(keyOf(slots[next]), mask);
            if (((next - home) & mask) >= ((next - hole) & mask)) {
                slots[hole] = slots[next];
                hole = next;
            }
        }
        slots[hole] = EMPTY;
    }

    /** Empties the index: the start of a full scan. */
    void clear() {
        Arrays.fill(slots, EMPTY);
        chained = 0;
        tree.clear();
        if (treeNodes != null) {
            treeNodes.clear();
        }
    }

    /** True if the index names no page at all (a page taken out of the tree may still be named there). */
    boolean isEmpty() {
        return chained == 0 && tree.isEmpty();
    }

    /**
     * Calls {@code action} with every page id the index names: in the table, and in the tree, the nodes
     * marked removed too unless {@code filedOnly}.
     */
    void forEachNamed(java.util.function.IntConsumer action, boolean filedOnly) {
        for (long held : slots) {
            if (held != EMPTY) {
                action.accept(idAt(held));
            }
        }
        if (filedOnly) {
            tree.forEachLive(action);
        } else {
            tree.forEachNode(action);
        }
    }

    /** Nodes of the collision tree marked removed and still there ({@link ContentTree#removedNodes}). */
    int removedTreeNodes() {
        return tree.removedNodes();
    }

    /** Pages filed (KSM's {@code pages_unshared}). */
    int size() {
        return chained + tree.size();
    }

    /**
     * Bytes of the shard ({@link MetadataSizes}): its object (tree, firstLive, slots, treeNodes;
     * placement, chained), its visitor, the table, the collision tree and its map.
     */
    long metadataBytes() {
        return MetadataSizes.object(4 * MetadataSizes.REFERENCE + 2 * Integer.BYTES) + MetadataSizes.object(0)
                + MetadataSizes.array(slots.length, Long.BYTES) + tree.metadataBytes()
                + (treeNodes == null ? 0 : MetadataSizes.int2IntMap(treeNodes.capacity()));
    }

    /** The slot a lookup of {@code key} starts at ({@link KeyPlacement}). */
    private int home(int key, int mask) {
        return KeyPlacement.place(key, placement) & mask;
    }

    /** How many slots past its home slot {@code key} sits, or -1 if it is not in the table. For tests. */
    int probeDistance(int key) {
        int slot = slotOf(key);
        return slot == NONE ? -1 : (slot - home(key, slots.length - 1)) & (slots.length - 1);
    }

    private int idAt(int slot) {
        return idAt(slots[slot]);
    }

    private static int idAt(long held) {
        return (int) held;
    }

    private static int keyOf(long held) {
        return (int) (held >>> 32);
    }

    private static long slot(int key, int id) {
        return (long) key << 32 | (id & 0xFFFF_FFFFL);
    }

    private void rehash(int size) {
        long[] old = slots;
        slots = emptyTable(size);
        int mask = size - 1;
        for (long held : old) {
            if (held != EMPTY) {
                int slot = home(keyOf(held), mask);
                while (slots[slot] != EMPTY) {
                    slot = (slot + 1) & mask;
                }
                slots[slot] = held;
            }
        }
    }

    private static long[] emptyTable(int size) {
        long[] table = new long[size];
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
