package io.samepage.core;

import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.util.Arrays;

/**
 * A domain's stable index: shared frames by key (the fast hash folded to 32 bits) and content.
 *
 * <p>Three parts. A hash table whose buckets are chains threaded through the frames' own {@code next}
 * links and keys in the {@link FrameTable}, one {@code int} per bucket, one to two frames per bucket:
 * at most 4 bytes per chained frame beyond the pool's 12. The chain holds, per key, one frame of the
 * first content filed under it, so a lookup compares one page per key. That content's other frames (its
 * duplicates, started when every frame of it mapped {@code max_page_sharing} pages) are kept by {@link
 * DuplicateFrames}, 12 bytes each, those with room ahead of the full ones, so a lookup that finds all
 * full looks at one of them, whatever {@code max_page_sharing}; a duplicate's {@code next} link holds
 * {@code -2 - slot}. A frame whose key the chain already holds for other content goes to the {@link
 * CollidingFrames}: a tree ordered by content with a node per content, so n colliding contents cost
 * O(log n) compares per lookup, and that content's other frames in lists of their own, as a chained
 * content's, so a lookup that finds all full looks at one or two; its {@code next} link then holds
 * {@code -2 - node} or {@code -2 - slot} there (the slot's frame tells the three apart). One content, one
 * place: a content with a node there files every later frame there too, even once its key's chained content
 * has left, so a lookup that matches the chained frame skips the tree. (Before, that later frame was chained,
 * and lookups looked on both sides. Rejected: moving the content's frames to the chain when the chained
 * content leaves, which needs room among the chain's duplicates in {@link #remove}, which must not
 * allocate.) Without duplicates or collisions those parts are empty and cost nothing. A key's bucket and
 * its filter bits come from the key mixed with a secret ({@link KeyPlacement}), so keys crafted to
 * share their low bits do not share a bucket.
 *
 * <p>Counts kept as frames come and go, never by walking: frames filed ({@code pages_shared}), and
 * KSM's {@code stable_node_chains} (contents held by more than one frame) and {@code stable_node_dups}
 * (the frames of those contents), grouped by content, never by key.
 *
 * <p>Rejected: an open-addressing map from key to chain head (Agrona {@code Long2LongHashMap}), 32
 * bytes per entry, which put the engine's metadata over its budget; one memcmp-ordered tree for every
 * frame (KSM's choice), which compares O(log n) pages per lookup where the hash table compares one.
 *
 * <p>A filter of a 64-bit word per bucket has six bits set for the key of every frame filed (chained,
 * a duplicate of a chained one, or colliding), so {@link #mayHoldUnlocked} can tell without the lock
 * that no frame holds a key (wrongly "may" for one key in 2,000 to 10,000): the scanner's threads take the
 * domain's lock only for pages that may merge here. A removal leaves its bit; the filter is rebuilt
 * when the table grows, and, once removals since the last build pass half the frames filed, by the next
 * {@link #plan}. A filter with stale bits only says "may" for more keys, which costs a locked lookup;
 * the rebuild allocates, so a removal, which must not fail midway, leaves it to the next plan.
 *
 * <p>Failure atomicity: the index allocates only in {@link #plan}, to grow or to rebuild its filter,
 * before it changes anything a lookup sees; {@link #add(Filing)} then files the planned frame, and
 * {@link #remove} takes a frame out, without allocating. So a merge plans before it remaps a page, and
 * nothing that can fail is left once it has (see {@link StableMerges}); a write that drops a frame's last
 * mapping cannot be left with the frame half taken out.
 *
 * <p>Thread safety: none beyond {@link #mayHoldUnlocked}; the owning {@link MergeDomain}'s lock guards
 * every other call. Allocates only when it grows.
 */
final class StableIndex {

    static final int NONE = -1;
    /** {@link #take}'s answer when frames of equal content exist but every one maps {@code max_page_sharing} pages. */
    static final int FULL = -2;
    private static final int MIN_BUCKETS = 64;
    private static final Runnable NOTHING = () -> { };

    private final FrameTable frames;
    private final PageCompare compare;
    private final CollidingFrames colliding;
    private final DuplicateFrames duplicates;
    /** The plan of {@link #add(int, int)}, which plans and files in one call. */
    private final Filing ownFiling = new Filing();
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
    /** Runs before the index allocates in {@link #plan}: nothing, but a test's fault injection. */
    private Runnable beforeGrowth = NOTHING;

    StableIndex(FramePool pool, PageCompare compare, long secret) {
        this.frames = pool.table();
        this.compare = compare;
        this.placement = KeyPlacement.secretOf(secret);
        this.duplicates = new DuplicateFrames(frames);
        this.colliding = new CollidingFrames(frames, compare, secret);
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
        int first = NONE;
        for (int f = heads[bucketOf(key, heads.length)]; f != NONE && first == NONE; f = frames.next(f)) {
            takeSteps++;
            first = frames.stableKey(f) == key ? f : NONE;
        }
        boolean chainedContent = first != NONE && compare.equal(offset, FramePool.offsetOf(first));
        if (chainedContent) {
            int refs = frames.refCount(first);
            if (refs >= maxSharing) {
                full = true;
            } else if (refs > 0 && frames.tryIncrementRef(first)) {
                return first;
            }
            int duplicate = duplicates.take(key, maxSharing);
            if (duplicate >= 0) {
                return duplicate;
            }
            full |= duplicate == DuplicateFrames.FULL;
        }
        if (!chainedContent && !colliding.isEmpty()) {      // a content is on one side only
            int f = colliding.take(key, offset, maxSharing);
            if (f >= 0) {
                return f;
            }
            full |= f == CollidingFrames.FULL;
        }
        return full ? FULL : NONE;
    }

    /**
     * Where {@link #add(Filing)} files a frame, as {@link #plan} worked it out. One per thread that files,
     * reused: filing allocates nothing.
     */
    static final class Filing {
        /** The frame planned for, or {@link #NONE}: no plan. */
        int frame = NONE;
        int key;
        /** The frame chained under {@link #key}, or {@link #NONE}: this frame is chained, unless {@link #node} is set. */
        int group;
        /** This frame's bytes equal {@link #group}'s: it joins that content's duplicates, else the colliding frames. */
        boolean duplicate;
        /** The colliding frames' node of this frame's content, or {@link #NONE}: the frame gets a node of its own. */
        int node;
        /** Frames filed with this frame's bytes and key, counted as far as the chain counts tell apart. */
        int equal;
    }

    /**
     * Works out where {@code frame}, whose bytes have {@code key} and will not change while it is filed,
     * goes in the index, and makes room for it there (the bucket table, the duplicates or the colliding
     * frames), and rebuilds the filter if removals left it due: then {@link #add(Filing)} files it, allocating
     * nothing, provided nothing is filed or taken out in between (the caller holds the domain's lock from one
     * call to the other). Changes nothing a lookup finds; if the index cannot grow it throws ({@link
     * OutOfMemoryError}) and {@code filing} holds no plan.
     */
    void plan(int frame, int key, Filing filing) {
        filing.frame = NONE;
        if (removedSinceBuilt > size() / 2 + MIN_BUCKETS) {     // left by the removals, which must not allocate
            beforeGrowth.run();
            buildFilter(heads.length);
        }
        long offset = FramePool.offsetOf(frame);
        int group = groupHead(key);
        int node = colliding.isEmpty() ? NONE : colliding.nodeOf(key, offset);
        int equal = colliding.count(node);
        boolean duplicate = group != NONE && compare.equal(offset, FramePool.offsetOf(group));
        if (group == NONE && node == NONE) {
            if (chained >= 2 * heads.length) {      // it would make more than two frames a bucket
                beforeGrowth.run();
                rehash(2 * heads.length);
            }
        } else if (duplicate) {
            equal += groupSize(key);
            if (!duplicates.hasRoom(key)) {
                beforeGrowth.run();
                duplicates.makeRoom(key);
            }
        } else if (!colliding.hasRoom(node)) {
            beforeGrowth.run();
            colliding.makeRoom(node);
        }
        filing.key = key;
        filing.group = group;
        filing.duplicate = duplicate;
        filing.node = node;
        filing.equal = equal;
        filing.frame = frame;
    }

    /** Files the frame {@code filing} holds the plan of ({@link #plan}); allocates nothing. */
    void add(Filing filing) {
        int frame = filing.frame;
        int key = filing.key;
        filing.frame = NONE;
        frames.setStableKey(frame, key);
        mark(filter, key);
        if (filing.group == NONE && filing.node == NONE) {
            chain(frame, key);
        } else if (filing.duplicate) {
            frames.setNext(frame, -2 - duplicates.add(key, frame));
        } else {
            frames.setNext(frame, colliding.add(frame, filing.node));
        }
        countJoined(filing.equal);
    }

    /**
     * Files {@code frame}, whose bytes have {@code key} and will not change while it is filed: {@link #plan},
     * then {@link #add(Filing)}. If the index cannot grow it throws, and the frame is not filed.
     */
    void add(int frame, int key) {
        plan(frame, key, ownFiling);
        add(ownFiling);
    }

    /**
     * Takes {@code frame} out (its bytes are still those it was filed with). Allocates nothing, so it
     * cannot fail midway: the filter keeps the frame's bits until the next {@link #plan} rebuilds it.
     *
     * @return false if it was not filed
     */
    boolean remove(int frame) {
        int key = frames.stableKey(frame);
        long offset = FramePool.offsetOf(frame);
        int link = frames.next(frame);
        boolean wasColliding = false;
        if (link <= -2 && duplicates.holds(-2 - link, frame)) {
            duplicates.remove(-2 - link, key);
        } else if (link <= -2) {
            if (!colliding.holds(link, frame)) {
                return false;
            }
            colliding.remove(frame, link);
            wasColliding = true;
        } else if (!unchain(frame, key)) {
            return false;
        } else if (duplicates.has(key)) {
            chain(duplicates.removeAny(key), key);     // the content stays chained, by a frame with room if any
        }
        frames.setNext(frame, NONE);
        removedSinceBuilt++;
        int equal = colliding.isEmpty() ? 0 : colliding.count(colliding.nodeOf(key, offset));
        int group = groupHead(key);
        if (group != NONE && (!wasColliding || compare.equal(offset, FramePool.offsetOf(group)))) {
            equal += groupSize(key);
        }
        countLeft(equal);
        return true;
    }

    /**
     * Tells the index that filed {@code frame}, full until now, has room: a duplicate goes ahead of its
     * content's full frames, where {@link #take} finds it. A chained frame and a colliding content's node's
     * are looked at by every lookup of their content anyway.
     */
    void noteRoom(int frame) {
        int link = frames.next(frame);
        if (link <= -2 && duplicates.holds(-2 - link, frame)) {
            duplicates.noteRoom(-2 - link, frames.stableKey(frame));
        } else if (link <= -2) {
            colliding.noteRoom(frame, link);
        }
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
     * The six bits a key sets in its bucket's word, six bits each from the top 36 of the key as placed
     * (whose low bits choose the word) times an odd 64-bit constant, so each depends on all of the key's.
     * "May" is then wrong for about one key in 10,000 ({@code StableFilterTest}: 18 of 200,000), about
     * one in 2,000 at a steady scan's load (up to two frames a bucket on average, more in some). Two bits
     * from the placed key's top twelve were wrong for one in 250 to 400 (489 of 200,000), four for 1 in
     * 1,000 to 4,000: each such page of a steady scan was taken out of the unstable index and filed again
     * under the locks, scan after scan, a fifth of a one-thread steady scan's time (docs/perf/engine.md).
     */
    private static long filterBits(int placed) {
        long mixed = (placed & 0xFFFF_FFFFL) * 0x9E37_79B9_7F4A_7C15L;
        return 1L << (mixed >>> 58) | 1L << (mixed >>> 52) | 1L << (mixed >>> 46) | 1L << (mixed >>> 40)
                | 1L << (mixed >>> 34) | 1L << (mixed >>> 28);
    }

    /** A filter for {@code buckets} buckets with the key of every frame filed now, published whole. */
    private void buildFilter(int buckets) {
        long[] bits = new long[buckets * FILTER_BITS_PER_BUCKET / Long.SIZE];
        for (int head : heads) {
            for (int f = head; f != NONE; f = frames.next(f)) {
                mark(bits, frames.stableKey(f));
            }
        }
        colliding.forEachContent(frame -> mark(bits, frames.stableKey(frame)));
        filter = bits;
        removedSinceBuilt = 0;
    }

    /**
     * False if no filed frame can hold bytes with {@code key}: none chained under it, and no colliding
     * content has it (their tree asked by key: any colliding content made this "may" for every key, and
     * 32-bit keys of a few hundred thousand contents always collide somewhere).
     */
    boolean mayHold(int key) {
        return groupHead(key) != NONE || colliding.mayHoldKey(key);
    }

    /** True if {@code frame} is filed here. */
    boolean contains(int frame) {
        int link = frames.next(frame);
        if (link <= -2) {     // the slot or node number alone could be another domain's
            return duplicates.holds(-2 - link, frame) || colliding.holds(link, frame);
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

    /** Frames {@link #take} looked at, ever: chained, duplicates and colliding ones. For tests. */
    long takeSteps() {
        return takeSteps + duplicates.steps() + colliding.steps();
    }

    /**
     * Runs {@code hook} from now on before the index allocates to grow, or to rebuild its filter, for a frame
     * it files. For tests: a hook that throws {@link OutOfMemoryError} stands for the allocation failing.
     */
    void beforeGrowth(Runnable hook) {
        beforeGrowth = hook;
    }

    /**
     * Where filed {@code frame}'s content is: {@link #NONE} for the hash chain (its chained frame and that
     * frame's duplicates), else its node among the colliding frames. For tests.
     */
    int placeOf(int frame) {
        int link = frames.next(frame);
        return link <= -2 && !duplicates.holds(-2 - link, frame)
                ? colliding.nodeOf(frames.stableKey(frame), FramePool.offsetOf(frame)) : NONE;
    }

    /** A duplicate frame among full ones that maps fewer than {@code maxSharing} pages, or NONE. For tests. */
    int withRoomAmongFull(int maxSharing) {
        int hidden = duplicates.withRoomAmongFull(maxSharing);
        return hidden != NONE ? hidden : colliding.withRoomAmongFull(maxSharing);
    }

    /** Stable frames filed. */
    int size() {
        return chained + colliding.size() + duplicates.size();
    }

    long chains() {
        return chains;
    }

    long dups() {
        return dups;
    }

    /**
     * Bytes of the index ({@link MetadataSizes}): its object (frames, compare, colliding, duplicates,
     * ownFiling, heads, filter, beforeGrowth; three ints, three longs), its filing (five ints, a boolean),
     * the bucket table, the filter, the colliding frames and the duplicates.
     */
    long metadataBytes() {
        return MetadataSizes.object(8 * MetadataSizes.REFERENCE + 3 * Integer.BYTES + 3 * Long.BYTES)
                + MetadataSizes.object(5 * Integer.BYTES + 1)
                + MetadataSizes.array(heads.length, Integer.BYTES) + MetadataSizes.array(filter.length, Long.BYTES)
                + colliding.metadataBytes() + duplicates.metadataBytes();
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

    /** The chained frame under {@code key}, or NONE. */
    private int groupHead(int key) {
        for (int f = heads[bucketOf(key, heads.length)]; f != NONE; f = frames.next(f)) {
            if (frames.stableKey(f) == key) {
                return f;
            }
        }
        return NONE;
    }

    /**
     * The frames of the content chained under {@code key}, which has one, counted up to 2: all that
     * {@link #countJoined} and {@link #countLeft} tell apart.
     */
    private int groupSize(int key) {
        return duplicates.has(key) ? 2 : 1;
    }

    /** Puts {@code frame} at the head of {@code key}'s bucket chain. */
    private void chain(int frame, int key) {
        int bucket = bucketOf(key, heads.length);
        frames.setNext(frame, heads[bucket]);
        heads[bucket] = frame;
        chained++;
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
}
