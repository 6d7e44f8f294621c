package io.samepage.core;

import java.util.Arrays;

/**
 * A domain's stable index: shared frames by key (the fast hash folded to 32 bits), a hash table whose
 * buckets are chains threaded through the frames' own {@code next} links and keys in the
 * {@link FramePool}. The table itself is one {@code int} per bucket, and it keeps between one and two
 * frames per bucket (it doubles past two), so it costs at most 4 bytes per stable frame beyond the
 * pool's 12 per frame. Duplicates of one content ({@code max_page_sharing}) share a key, hence a
 * bucket; a lookup walks the bucket and skips frames filed under other keys.
 *
 * <p>Rejected: an open-addressing map from key to chain head (Agrona {@code Long2LongHashMap}), 32
 * bytes per entry, which put the engine's metadata over its budget of 16 bytes per guest page plus
 * 16 per frame.
 *
 * <p>Thread safety: none; the owning {@link MergeDomain}'s lock guards every call. Allocates only when
 * it grows.
 */
final class StableIndex {

    static final int NONE = -1;
    private static final int MIN_BUCKETS = 64;

    private final FramePool pool;
    private int[] heads = emptyTable(MIN_BUCKETS);
    private int entries;

    StableIndex(FramePool pool) {
        this.pool = pool;
    }

    /**
     * The first frame of {@code key}'s bucket, or {@link #NONE}: walk on with {@link FramePool#next} and
     * consider only frames whose {@link FramePool#stableKey} is {@code key}.
     */
    int bucketHead(int key) {
        return heads[key & (heads.length - 1)];
    }

    /** Files {@code frame} under {@code key}. */
    void add(int frame, int key) {
        pool.table().setStableKey(frame, key);
        int bucket = key & (heads.length - 1);
        pool.table().setNext(frame, heads[bucket]);
        heads[bucket] = frame;
        if (++entries > 2 * heads.length) {
            rehash(2 * heads.length);
        }
    }

    /**
     * Takes {@code frame} out.
     *
     * @return false if it was not in the index
     */
    boolean remove(int frame) {
        int bucket = pool.table().stableKey(frame) & (heads.length - 1);
        int previous = NONE;
        for (int f = heads[bucket]; f != NONE; f = pool.table().next(f)) {
            if (f == frame) {
                if (previous == NONE) {
                    heads[bucket] = pool.table().next(f);
                } else {
                    pool.table().setNext(previous, pool.table().next(f));
                }
                pool.table().setNext(frame, NONE);
                entries--;
                return true;
            }
            previous = f;
        }
        return false;
    }

    /** Stable frames filed. */
    int size() {
        return entries;
    }

    /**
     * Counts {@code [stable_node_chains, stable_node_dups]}: keys filed with more than one frame, and
     * the frames under those keys.
     */
    long[] chainCounts() {
        long[] counts = new long[2];
        for (int head : heads) {
            for (int f = head; f != NONE; f = pool.table().next(f)) {
                int key = pool.table().stableKey(f);
                boolean first = true;
                for (int g = head; g != f; g = pool.table().next(g)) {
                    first &= pool.table().stableKey(g) != key;
                }
                if (!first) {
                    continue;
                }
                int length = 0;
                for (int g = f; g != NONE; g = pool.table().next(g)) {
                    length += pool.table().stableKey(g) == key ? 1 : 0;
                }
                if (length > 1) {
                    counts[0]++;
                    counts[1] += length;
                }
            }
        }
        return counts;
    }

    /** Bytes of the bucket table. */
    long metadataBytes() {
        return 4L * heads.length;
    }

    private void rehash(int buckets) {
        int[] old = heads;
        heads = emptyTable(buckets);
        for (int head : old) {
            int f = head;
            while (f != NONE) {
                int after = pool.table().next(f);
                int bucket = pool.table().stableKey(f) & (buckets - 1);
                pool.table().setNext(f, heads[bucket]);
                heads[bucket] = f;
                f = after;
            }
        }
    }

    private static int[] emptyTable(int buckets) {
        int[] table = new int[buckets];
        Arrays.fill(table, NONE);
        return table;
    }
}
