package io.samepage.core;

import java.util.Arrays;

/**
 * The entries of an index whose key collides with other content: a treap ordered by key, then by the
 * bytes of the page each entry names (memcmp order, as KSM orders its trees), then by entry id. It is
 * what bounds a flood of colliding hashes: n entries under one key cost O(log n) full compares per
 * lookup, not n. An index keeps the first content filed under a key in its hash chain (one key
 * compare, one page compare) and only the entries whose key is taken by other content here, so the
 * tree is empty, and costs no memory, until hashes collide. The stable index files one entry per
 * content here, and keeps that content's other frames beside its node ({@link CollidingFrames}), so a
 * lookup finds the content's node ({@link #findNode}) in O(log n) compares however many frames it has.
 *
 * <p>Balance: each node's priority is its entry id mixed with a per-engine random secret, so nobody
 * who fills pages can choose the tree's shape; the expected depth is O(log n) for any insertion order.
 * Nodes live in three {@code int} arrays (entry, left, right: 12 bytes per node), grown on demand.
 *
 * <p>An entry's bytes may change while it is in the tree only in the unstable index, whose entries
 * go stale like KSM's unstable tree: then navigation may miss an equal entry (a missed merge, never a
 * wrong one: every merge recompares under locks), and such an index only marks its removed entries
 * {@linkplain #markRemoved removed}, for a lookup of their content to take out ({@link #find}), and is
 * emptied whole at the next full scan once it holds a removed node ({@link UnstableFiling}). The stable index's
 * entries never change, so its tree stays ordered and {@link #remove} finds every node.
 *
 * <p>Thread safety: none; the owning index's lock or thread guards every call. Allocates only when
 * it grows, and recursion depth is the tree's depth.
 */
final class ContentTree {

    static final int NONE = -1;

    /** What the tree orders: each entry's key and where its page's bytes are. */
    interface Entries {
        int key(int entry);

        /** Offset in the frame pool of the entry's page, or -1 if it has none now (never ordered as equal). */
        long offset(int entry);
    }

    private final Entries entries;
    private final PageCompare compare;
    private final long secret;
    private int[] entry;
    private int[] left;
    private int[] right;
    private int root = NONE;
    private int used;
    private int freeList = NONE;
    private int live;
    /** Nodes {@linkplain #markRemoved marked removed} and still in the tree. */
    private int removed;
    /** Set by {@link #detach(int, int)} when it finds the node it takes out. */
    private boolean detached;
    /** The entry {@link #find} found, or {@link #NONE}. */
    private int found = NONE;

    ContentTree(Entries entries, PageCompare compare, long secret) {
        this.entries = entries;
        this.compare = compare;
        this.secret = secret;
    }

    /** Live entries. */
    int size() {
        return live;
    }

    /**
     * Files {@code e}; returns its node, which {@link #remove}/{@link #markRemoved} take. Allocates only if
     * {@link #hasRoom} is false, and then changes nothing if it cannot.
     */
    int insert(int e) {
        int node = newNode(e);
        root = insert(root, node);
        live++;
        return node;
    }

    /** True if {@link #insert} would allocate nothing. */
    boolean hasRoom() {
        return freeList != NONE || entry != null && used < entry.length;
    }

    /**
     * Makes room for one {@link #insert}, which then allocates nothing. Grows the three node arrays together
     * or, if an allocation fails, none of them: grown one by one, a failure left them of different lengths.
     */
    void makeRoom() {
        if (hasRoom()) {
            return;
        }
        int capacity = entry == null ? 16 : 2 * entry.length;
        int[] grownEntry = entry == null ? new int[capacity] : Arrays.copyOf(entry, capacity);
        int[] grownLeft = left == null ? new int[capacity] : Arrays.copyOf(left, capacity);
        int[] grownRight = right == null ? new int[capacity] : Arrays.copyOf(right, capacity);
        entry = grownEntry;
        left = grownLeft;
        right = grownRight;
    }

    /** Calls {@code action} with every live entry, in node order. */
    void forEachLive(java.util.function.IntConsumer action) {
        for (int node = 0; node < used; node++) {
            if (entry[node] >= 0) {
                action.accept(entry[node]);
            }
        }
    }

    /** Calls {@code action} with the entry of every node in the tree, removed ones too: each still names its page. */
    void forEachNode(java.util.function.IntConsumer action) {
        forEachNode(root, action);
    }

    private void forEachNode(int node, java.util.function.IntConsumer action) {
        for (; node != NONE; node = right[node]) {
            action.accept(entryAt(node));
            forEachNode(left[node], action);
        }
    }

    /** The entry at {@code node}. */
    int entryAt(int node) {
        return entry[node] < 0 ? ~entry[node] : entry[node];
    }

    /** True if {@code node} is a live node of this tree holding {@code e}. */
    boolean holds(int node, int e) {
        return entry != null && node >= 0 && node < used && entry[node] == e;
    }

    /** Takes {@code node} out of the tree (the stable index: entries never changed since inserted). */
    void remove(int node) {
        detach(node);
        freeNode(node);
    }

    /**
     * Puts entry {@code e}, whose key and bytes equal those of {@code node}'s entry, in that entry's place,
     * in the same node (the stable index: entries never changed since inserted). Allocates nothing.
     */
    void replace(int node, int e) {
        detach(node);
        entry[node] = e;
        left[node] = NONE;
        right[node] = NONE;
        root = insert(root, node);
    }

    /** Unlinks {@code node} from the tree, keeping the node; throws if the tree does not hold it. */
    private void detach(int node) {
        detached = false;
        root = detach(root, node);
        if (!detached) {
            throw new IllegalStateException("content tree: node " + node + " (entry " + entryAt(node) + ") not found");
        }
    }

    /** Marks {@code node} removed but keeps it for navigation (the unstable index: entries may be stale). */
    void markRemoved(int node) {
        if (entry[node] >= 0) {
            entry[node] = ~entry[node];
            live--;
            removed++;
        }
    }

    /** Nodes marked removed and still in the tree: each stands where its entry's bytes, maybe since changed, put it. */
    int removedNodes() {
        return removed;
    }

    /** True if the tree holds no node, not even a removed one (which still names its page). */
    boolean isEmpty() {
        return root == NONE;
    }

    /** Empties the tree; keeps its arrays. */
    void clear() {
        root = NONE;
        used = 0;
        freeList = NONE;
        live = 0;
        removed = 0;
    }

    /** Visits live entries equal to the probe's key and bytes until {@code visitor} accepts one. */
    interface Visitor {
        /** @return true to stop with this entry */
        boolean accept(int entry);
    }

    /**
     * The first live entry, in no promised order, whose key is {@code key} and whose bytes equal the
     * page at {@code offset} and that {@code visitor} accepts; {@link #NONE} if none. Takes out every
     * {@linkplain #markRemoved removed} node of equal content it meets: it stands where the search
     * reached it, so no search by its own, maybe stale, bytes is needed. So a removed node costs one
     * compare once, not one per lookup of its content, and a lookup costs O(log n + r + k) compares, r the
     * removed nodes it takes out (one per {@link #markRemoved}, amortized) and k the live entries of
     * equal content the visitor refuses. Before, removed nodes stayed, and at {@code max_page_sharing} 2,
     * where every pair of one content leaves one, each lookup of it walked all of them: O(pages) a page.
     */
    int find(int key, long offset, Visitor visitor) {
        found = NONE;
        root = find(root, key, offset, visitor);
        return found;
    }

    /**
     * A node whose entry has key {@code key} and bytes equal to the page at {@code offset}, or {@link #NONE};
     * which one if several, not promised. For a tree none of whose nodes is {@linkplain #markRemoved marked
     * removed} (the stable index's). O(log n) compares: it stops at the first.
     */
    int findNode(int key, long offset) {
        int node = root;
        while (node != NONE) {
            int c = probeOrder(key, offset, node);
            if (c == 0) {
                return node;
            }
            node = c < 0 ? left[node] : right[node];
        }
        return NONE;
    }

    /**
     * False only if no node, removed or not, has key {@code key}: then {@link #find} of that key finds
     * nothing and takes nothing out, whatever the bytes. Reads keys only, no page: O(log n) steps.
     */
    boolean mayHoldKey(int key) {
        int node = root;
        while (node != NONE) {
            int c = Integer.compare(key, entries.key(entryAt(node)));
            if (c == 0) {
                return true;
            }
            node = c < 0 ? left[node] : right[node];
        }
        return false;
    }

    /**
     * Bytes of the tree ({@link MetadataSizes}): its object (entries, compare, three arrays; secret;
     * root, used, freeList, live, found; detached), its entries' adapter (one reference), and its three
     * node arrays once made.
     */
    long metadataBytes() {
        long objects = MetadataSizes.object(5 * MetadataSizes.REFERENCE + Long.BYTES + 5 * Integer.BYTES + 1)
                + MetadataSizes.object(MetadataSizes.REFERENCE);
        return entry == null ? objects : objects + 3 * MetadataSizes.array(entry.length, Integer.BYTES);
    }

    /**
     * Searches the subtree at {@code node} for {@link #find}, setting {@link #found}; returns the subtree's
     * root once the removed nodes of equal content met are taken out.
     */
    private int find(int node, int key, long offset, Visitor visitor) {
        if (node == NONE) {
            return NONE;
        }
        int c = probeOrder(key, offset, node);
        if (c < 0) {
            left[node] = find(left[node], key, offset, visitor);
        } else if (c > 0) {
            right[node] = find(right[node], key, offset, visitor);
        } else if (entry[node] < 0) {
            int rest = merge(left[node], right[node]);
            freeNode(node);
            return find(rest, key, offset, visitor);
        } else if (visitor.accept(entry[node])) {
            found = entry[node];
        } else {
            left[node] = find(left[node], key, offset, visitor);
            if (found == NONE) {
                right[node] = find(right[node], key, offset, visitor);
            }
        }
        return node;
    }

    /** Orders a probe (key, page) against {@code node}'s entry, ignoring entry ids. */
    private int probeOrder(int key, long offset, int node) {
        int e = entryAt(node);
        int c = Integer.compare(key, entries.key(e));
        if (c != 0) {
            return c;
        }
        long other = entries.offset(e);
        return other < 0 ? -1 : offset < 0 ? 1 : compare.order(offset, other);
    }

    /** Orders node {@code a} against node {@code b}: key, bytes, then entry id (a total order). */
    private int order(int a, int b) {
        int ea = entryAt(a);
        int eb = entryAt(b);
        int c = probeOrder(entries.key(ea), entries.offset(ea), b);
        return c != 0 ? c : Integer.compare(ea, eb);
    }

    private int insert(int at, int node) {
        if (at == NONE) {
            return node;
        }
        if (order(node, at) < 0) {
            left[at] = insert(left[at], node);
            return priority(left[at]) > priority(at) ? rotateRight(at) : at;
        }
        right[at] = insert(right[at], node);
        return priority(right[at]) > priority(at) ? rotateLeft(at) : at;
    }

    private int detach(int at, int node) {
        if (at == NONE) {
            return NONE;
        }
        if (at == node) {
            detached = true;
            return merge(left[at], right[at]);
        }
        if (order(node, at) < 0) {
            left[at] = detach(left[at], node);
        } else {
            right[at] = detach(right[at], node);
        }
        return at;
    }

    private int merge(int a, int b) {
        if (a == NONE) {
            return b;
        }
        if (b == NONE) {
            return a;
        }
        if (priority(a) > priority(b)) {
            right[a] = merge(right[a], b);
            return a;
        }
        left[b] = merge(a, left[b]);
        return b;
    }

    private int rotateRight(int at) {
        int pivot = left[at];
        left[at] = right[pivot];
        right[pivot] = at;
        return pivot;
    }

    private int rotateLeft(int at) {
        int pivot = right[at];
        right[at] = left[pivot];
        left[pivot] = at;
        return pivot;
    }

    private long priority(int node) {
        long h = (entryAt(node) + 1L) * 0x9E37_79B9_7F4A_7C15L ^ secret;
        h = (h ^ (h >>> 31)) * 0xBF58_476D_1CE4_E5B9L;
        return h ^ (h >>> 29);
    }

    private int newNode(int e) {
        int node;
        if (freeList != NONE) {
            node = freeList;
            freeList = left[node];
        } else {
            makeRoom();
            node = used++;
        }
        entry[node] = e;
        left[node] = NONE;
        right[node] = NONE;
        return node;
    }

    private void freeNode(int node) {
        if (entry[node] >= 0) {
            live--;
        } else if (entry[node] != Integer.MIN_VALUE) {
            removed--;
        }
        entry[node] = Integer.MIN_VALUE;
        left[node] = freeList;
        freeList = node;
    }
}
