package io.samepage.core;

import java.util.concurrent.locks.ReentrantLock;

/**
 * A domain's unstable index in {@value #SHARDS} shards by key ({@link UnstableIndex} each, made on first
 * use), each with its own lock, so the threads of {@code scan_threads} file and pair pages of different
 * keys side by side. A key always falls in the same shard, so a shard holds every candidate its key
 * can pair with.
 *
 * <p>Thread safety: a shard's calls need its {@link #lock}; {@link #clear} takes each in turn, and
 * {@link #size} and {@link #metadataBytes} read without locks (a racy count, as the counters are).
 */
final class UnstableShards {

    static final int SHARDS = 32;
    private static final int SHARD_SHIFT = Integer.SIZE - Integer.numberOfTrailingZeros(SHARDS);

    private final PageIds ids;
    private final PageCompare compare;
    private final long secret;
    private final UnstableIndex[] shards = new UnstableIndex[SHARDS];
    private final ReentrantLock[] locks = new ReentrantLock[SHARDS];

    UnstableShards(PageIds ids, PageCompare compare, long secret) {
        this.ids = ids;
        this.compare = compare;
        this.secret = secret;
        for (int s = 0; s < SHARDS; s++) {
            locks[s] = new ReentrantLock();
        }
    }

    /** The shard {@code key} falls in, 0 to {@value #SHARDS} - 1. */
    static int shardOf(int key) {
        return key >>> SHARD_SHIFT;
    }

    /** The lock of {@code key}'s shard: held for every call about {@code key}. */
    ReentrantLock lock(int key) {
        return locks[key >>> SHARD_SHIFT];
    }

    /** {@link UnstableIndex#chained}. Caller holds the key's lock. */
    int chained(int key) {
        UnstableIndex shard = shards[key >>> SHARD_SHIFT];
        return shard == null ? UnstableIndex.NONE : shard.chained(key);
    }

    /** {@link UnstableIndex#colliding}. Caller holds the key's lock. */
    int colliding(int key, long offset) {
        UnstableIndex shard = shards[key >>> SHARD_SHIFT];
        return shard == null ? UnstableIndex.NONE : shard.colliding(key, offset);
    }

    /** {@link UnstableIndex#holdsNothingFor}. Caller holds the key's lock. */
    boolean holdsNothingFor(int key) {
        UnstableIndex shard = shards[key >>> SHARD_SHIFT];
        return shard == null || shard.holdsNothingFor(key);
    }

    /** {@link UnstableIndex#put}. Caller holds the key's lock. */
    void put(int key, int id) {
        int s = key >>> SHARD_SHIFT;
        if (shards[s] == null) {
            shards[s] = new UnstableIndex(ids, compare, secret + s);
        }
        shards[s].put(key, id);
    }

    /** {@link UnstableIndex#remove}. Caller holds the key's lock. */
    void remove(int key, int id) {
        UnstableIndex shard = shards[key >>> SHARD_SHIFT];
        if (shard != null) {
            shard.remove(key, id);
        }
    }

    /** Empties every shard: the start of a full scan. */
    void clear() {
        for (int s = 0; s < SHARDS; s++) {
            locks[s].lock();
            try {
                if (shards[s] != null) {
                    shards[s].clear();
                }
            } finally {
                locks[s].unlock();
            }
        }
    }

    /** {@link UnstableIndex#forEachNamed} over every shard, each under its lock: for tests. */
    void forEachNamed(java.util.function.IntConsumer action, boolean filedOnly) {
        for (int s = 0; s < SHARDS; s++) {
            locks[s].lock();
            try {
                if (shards[s] != null) {
                    shards[s].forEachNamed(action, filedOnly);
                }
            } finally {
                locks[s].unlock();
            }
        }
    }

    /** True if a shard's collision tree holds a node marked removed. Only while no scanner thread runs. */
    boolean anyRemovedTreeNode() {
        for (UnstableIndex shard : shards) {
            if (shard != null && shard.removedTreeNodes() > 0) {
                return true;
            }
        }
        return false;
    }

    /** True if no shard names any page. Only while no scanner thread runs: it takes no lock. */
    boolean isEmpty() {
        for (UnstableIndex shard : shards) {
            if (shard != null && !shard.isEmpty()) {
                return false;
            }
        }
        return true;
    }

    /** Pages filed (KSM's {@code pages_unshared}). */
    long size() {
        long total = 0;
        for (UnstableIndex shard : shards) {
            total += shard == null ? 0 : shard.size();
        }
        return total;
    }

    /**
     * Bytes of this object (ids, compare, shards, locks; secret), its two arrays, its locks and the
     * shards made ({@link MetadataSizes}).
     */
    long metadataBytes() {
        long total = MetadataSizes.object(4 * MetadataSizes.REFERENCE + Long.BYTES)
                + 2 * MetadataSizes.array(SHARDS, MetadataSizes.REFERENCE) + SHARDS * MetadataSizes.REENTRANT_LOCK;
        for (UnstableIndex shard : shards) {
            total += shard == null ? 0 : shard.metadataBytes();
        }
        return total;
    }
}
