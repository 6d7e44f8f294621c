package io.samepage.core;

import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.util.Arrays;

/**
 * A domain's stable index: shared frames by key (the fast hash folded to 32 bits) and content.
 *
 * <p>Two parts. A hash table whose buckets are chains threaded through the frames' own {@code next}
 * links and keys in the {@link FrameTable}, one {@code int} per bucket, one to two frames per bucket:
 * at most 4 bytes per stable frame beyond the pool's 12. The chain holds, per key, the first content
 * filed under it and that content's duplicates ({@code max_page_sharing} chains), so every frame of one
 * key in the chain holds the same bytes: a lookup compares one page per key. A frame whose key the
 * chain already holds for other content goes into the {@link ContentTree}, ordered by content, so n
 * colliding contents cost O(log n) compares per lookup; its {@code next} link then holds
 * {@code -2 - node}. Without collisions the tree is empty and costs nothing. A key's bucket and its
 * filter bits come from the key mixed with a secret ({@link KeyPlacement}), so keys crafted to share
 * their low bits do not share a bucket.
 *
 * <p>Counts kept as frames come and go, never by walking: frames filed ({@code pages_shared}), and
 * KSM's {@code stable_node_chains} (contents held by more than one frame) and {@code stable_node_dups}
 * (the frames of those contents), grouped by content, never by key.
 *
 * <p>Rejected: an open-addressing map from key to chain head (Agrona {@code Long2LongHashMap}), 32
 * bytes per entry, which put the engine's metadata over its budget; one memcmp-ordered tree for every
 * frame (KSM's choice), which compares O(log n) pages per lookup where the hash table compares one.
 *
 * <p>A filter of a 64-bit word per bucket has two bits set for the key of every frame filed (chained or
 * in the tree), so {@link #mayHoldUnlocked} can tell without the lock that no frame holds a key (wrongly
 * "may" for about one key in 250): the scanner's threads take the domain's lock only for pages that may
 * merge here. A removal leaves its bit; the filter is rebuilt when the table grows, and once removals
 * since the last build pass half the frames filed.
 *
 * <p>Thread safety: none beyond {@link #mayHoldUnlocked}; the owning {@link MergeDomain}'s lock guards
 * every other call. Allocates only when it grows.
 */
final class StableIndex {

    static final int NONE = -1;
    /** {@link #take}'s answer when frames of equal content exist but every one maps {@code max_page_sharing} pages. */
    static final int FULL = -2;
    private static final int MIN_BUCKETS = 64;

    private final FrameTable frames;
    private final PageCompare compare;
    private final ContentTree tree;
    private final Taker taker = new Taker();
    private static final VarHandle WORD = MethodHandles.arrayElementVarHandle(long[].class);
    private static final int FILTER_BITS_PER_BUCKET = 64;

    private int[] heads = emptyTable(MIN_BUCKETS);
    /** A bit per key of the frames filed since it was built; replaced, never resized in place. */
    private volatile long[] filter = new long[MIN_BUCKETS * FILTER_BITS_PER_BUCKET / Long.SIZE];
    private int removedSinceBuilt;
    /** Mixed into every key before it is placed ({@link KeyPlacement}). */
    private final int placement;
    private int chained;
    private long chains;
    private long dups;
    /** Chained frames {@link #take} looked at, ever. For tests: a lookup's cost in steps, not compares. */
    private long takeSteps;

    StableIndex(FramePool pool, PageCompare compare, long secret) {
        this.frames = pool.table();
        this.compare = compare;
        this.placement = KeyPlacement.secretOf(secret);
        this.tree = new ContentTree(new ContentTree.Entries() {
            @Override
            public int key(int frame) {
                return frames.stableKey(frame);
            }

            @Override
            public long offset(int frame) {
                return FramePool.offsetOf(frame);
            }
        }, compare, secret);
    }

    /**
     * Takes a reference on a filed frame whose bytes equal the page at {@code offset} (key {@code key})
     * and that maps fewer than {@code maxSharing} pages.
     *
     * @return the frame, its refcount already incremented; {@link #FULL} if equal frames exist but all
     *         are full; {@link #NONE} if no frame holds these bytes
     */
    int take(int key, long offset, int maxSharing) {
        boolean full = false;
        int bucket = bucketOf(key, heads.length);
        int group = groupHead(key, NONE);
        if (group != NONE && compare.equal(offset, FramePool.offsetOf(group))) {
            for (int f = heads[bucket], previous = NONE; f != NONE; previous = f, f = frames.next(f)) {
                takeSteps++;
                if (frames.stableKey(f) != key) {
                    continue;
                }
                int refs = frames.refCount(f);
                if (refs >= maxSharing) {
                    full = true;
                } else if (refs > 0 && frames.tryIncrementRef(f)) {
                    if (previous != NONE) {
                        toFront(bucket, previous, f);
                    }
                    return f;
                }
            }
        }
        if (tree.size() > 0) {
            taker.maxSharing = maxSharing;
            taker.full = false;
            int f = tree.find(key, offset, taker);
            if (f != NONE) {
                return f;
            }
            full |= taker.full;
        }
        return full ? FULL : NONE;
    }

    /** Files {@code frame}, whose bytes have {@code key} and will not change while it is filed. */
    void add(int frame, int key) {
        frames.setStableKey(frame, key);
        mark(filter, key);
        long offset = FramePool.offsetOf(frame);
        int group = groupHead(key, NONE);
        int equal = tree.size() > 0 ? tree.countEqual(key, offset) : 0;
        if (group == NONE || compare.equal(offset, FramePool.offsetOf(group))) {
            equal += group == NONE ? 0 : groupSize(group, key);
            int bucket = bucketOf(key, heads.length);
            frames.setNext(frame, heads[bucket]);
            heads[bucket] = frame;
            if (++chained > 2 * heads.length) {
                rehash(2 * heads.length);
            }
        } else {
            frames.setNext(frame, -2 - tree.insert(frame));
        }
        countJoined(equal);
    }

    /**
     * Takes {@code frame} out (its bytes are still those it was filed with).
     *
     * @return false if it was not filed
     */
    boolean remove(int frame) {
        int key = frames.stableKey(frame);
        long offset = FramePool.offsetOf(frame);
        int link = frames.next(frame);
        if (link <= -2) {
            tree.remove(-2 - link);
        } else if (!unchain(frame, key)) {
            return false;
        }
        frames.setNext(frame, NONE);
        if (++removedSinceBuilt > size() / 2 + MIN_BUCKETS) {
            buildFilter(heads.length);
        }
        int equal = tree.size() > 0 ? tree.countEqual(key, offset) : 0;
        int group = groupHead(key, NONE);
        if (group != NONE && (link > -2 || compare.equal(offset, FramePool.offsetOf(group)))) {
            equal += groupSize(group, key);
        }
        countLeft(equal);
        return true;
    }

    /**
     * False if no frame was filed under {@code key} when the filter was last read, without the lock:
     * a frame filed meanwhile may be missed (a merge missed until the next visit), never a wrong one,
     * since a true answer only leads to the locked lookup.
     */
    boolean mayHoldUnlocked(int key) {
        long[] bits = filter;
        int placed = KeyPlacement.place(key, placement);
        long mask = filterBits(placed);
        return ((long) WORD.getOpaque(bits, placed & (bits.length - 1)) & mask) == mask;
    }

    private void mark(long[] bits, int key) {
        int placed = KeyPlacement.place(key, placement);
        int word = placed & (bits.length - 1);
        WORD.setOpaque(bits, word, (long) WORD.getOpaque(bits, word) | filterBits(placed));
    }

    /** The bucket of {@code key} in a table of {@code buckets} ({@link KeyPlacement}). */
    private int bucketOf(int key, int buckets) {
        return KeyPlacement.place(key, placement) & (buckets - 1);
    }

    /**
     * The two bits a key sets in its bucket's word, from the top twelve bits of the key as placed (the
     * word is chosen by its low bits): with at most two keys a bucket, "may" is wrong for about one key
     * in 250, where one bit in 16 was wrong for one in eight and cost each such unique page a read of
     * its bytes.
     */
    private static long filterBits(int placed) {
        return 1L << (placed >>> 26) | 1L << (placed >>> 20);
    }

    /** A filter for {@code buckets} buckets with the key of every frame filed now, published whole. */
    private void buildFilter(int buckets) {
        long[] bits = new long[buckets * FILTER_BITS_PER_BUCKET / Long.SIZE];
        for (int head : heads) {
            for (int f = head; f != NONE; f = frames.next(f)) {
                mark(bits, frames.stableKey(f));
            }
        }
        tree.forEachLive(frame -> mark(bits, frames.stableKey(frame)));
        filter = bits;
        removedSinceBuilt = 0;
    }

    /** False if no filed frame can hold bytes with {@code key}. */
    boolean mayHold(int key) {
        return tree.size() > 0 || groupHead(key, NONE) != NONE;
    }

    /** True if {@code frame} is filed here. */
    boolean contains(int frame) {
        int link = frames.next(frame);
        if (link <= -2) {
            return tree.holds(-2 - link, frame);    // the node number alone could be another domain's tree's
        }
        for (int f = heads[bucketOf(frames.stableKey(frame), heads.length)]; f != NONE; f = frames.next(f)) {
            if (f == frame) {
                return true;
            }
        }
        return false;
    }

    /** The most frames any one bucket chains. For tests. */
    int longestChain() {
        int longest = 0;
        for (int head : heads) {
            int n = 0;
            for (int f = head; f != NONE; f = frames.next(f)) {
                n++;
            }
            longest = Math.max(longest, n);
        }
        return longest;
    }

    /**
     * Moves chained frame {@code f}, which follows {@code previous} in {@code bucket}'s chain, to the
     * chain's head, where the next {@link #take} of its content looks first: the frame found with room is
     * looked at first until it is full. A content's duplicates are chained newest first, and a guest that
     * broke sharing of the oldest ones (its own pages, written again with the same bytes) made every merge
     * walk past all the full ones before them: a lookup O(duplicates), a scan quadratic in the guest's
     * pages (6.2x the per-page cost of one frame at 1,024 duplicates, docs/perf/engine.md). Now one walk
     * per frame filled, about 255 merges at the default {@code max_page_sharing}. Every frame of one key
     * in the chain holds the same bytes, so the order is free.
     */
    private void toFront(int bucket, int previous, int f) {
        frames.setNext(previous, frames.next(f));
        frames.setNext(f, heads[bucket]);
        heads[bucket] = f;
    }

    long takeSteps() {
        return takeSteps;
    }

    /** Stable frames filed. */
    int size() {
        return chained + tree.size();
    }

    long chains() {
        return chains;
    }

    long dups() {
        return dups;
    }

    /**
     * Bytes of the index ({@link MetadataSizes}): its object (frames, compare, tree, taker, heads, filter;
     * three ints, three longs), its taker (outer, maxSharing, full), the bucket table, the filter and the
     * collision tree.
     */
    long metadataBytes() {
        return MetadataSizes.object(6 * MetadataSizes.REFERENCE + 3 * Integer.BYTES + 3 * Long.BYTES)
                + MetadataSizes.object(MetadataSizes.REFERENCE + Integer.BYTES + 1)
                + MetadataSizes.array(heads.length, Integer.BYTES) + MetadataSizes.array(filter.length, Long.BYTES)
                + tree.metadataBytes();
    }

    /** A frame of this content joined {@code equal} others: KSM's chain counts, by content. */
    private void countJoined(int equal) {
        if (equal == 1) {
            chains++;
            dups += 2;
        } else if (equal > 1) {
            dups++;
        }
    }

    /** A frame left {@code equal} others of its content. */
    private void countLeft(int equal) {
        if (equal == 1) {
            chains--;
            dups -= 2;
        } else if (equal > 1) {
            dups--;
        }
    }

    /** The first chained frame under {@code key} other than {@code except}, or NONE. */
    private int groupHead(int key, int except) {
        for (int f = heads[bucketOf(key, heads.length)]; f != NONE; f = frames.next(f)) {
            if (frames.stableKey(f) == key && f != except) {
                return f;
            }
        }
        return NONE;
    }

    /** Chained frames under {@code key} from {@code head} on: all hold the same bytes. */
    private int groupSize(int head, int key) {
        int n = 0;
        for (int f = head; f != NONE; f = frames.next(f)) {
            n += frames.stableKey(f) == key ? 1 : 0;
        }
        return n;
    }

    private boolean unchain(int frame, int key) {
        int bucket = bucketOf(key, heads.length);
        int previous = NONE;
        for (int f = heads[bucket]; f != NONE; f = frames.next(f)) {
            if (f == frame) {
                if (previous == NONE) {
                    heads[bucket] = frames.next(f);
                } else {
                    frames.setNext(previous, frames.next(f));
                }
                chained--;
                return true;
            }
            previous = f;
        }
        return false;
    }

    private void rehash(int buckets) {
        int[] old = heads;
        heads = emptyTable(buckets);
        for (int head : old) {
            int f = head;
            while (f != NONE) {
                int after = frames.next(f);
                int bucket = bucketOf(frames.stableKey(f), buckets);
                frames.setNext(f, heads[bucket]);
                heads[bucket] = f;
                f = after;
            }
        }
        buildFilter(buckets);
    }

    private static int[] emptyTable(int buckets) {
        int[] table = new int[buckets];
        Arrays.fill(table, NONE);
        return table;
    }

    /** The tree visitor of {@link #take}: the first equal frame with room; allocates nothing per lookup. */
    private final class Taker implements ContentTree.Visitor {
        int maxSharing;
        boolean full;

        @Override
        public boolean accept(int frame) {
            int refs = frames.refCount(frame);
            if (refs >= maxSharing) {
                full = true;
                return false;
            }
            return refs > 0 && frames.tryIncrementRef(frame);
        }
    }
}
