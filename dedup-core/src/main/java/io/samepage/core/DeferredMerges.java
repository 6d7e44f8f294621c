package io.samepage.core;

/**
 * The pages one scanner thread found ready to merge in the first half of a batch ({@link ScanWorkers}),
 * sorted by the thread that will look them up in the indexes: the owner of the key's unstable shard
 * ({@link #ownerOf}). So in the second half each shard's index is changed by one thread, whose cache
 * keeps its lines, instead of by every thread in turn.
 *
 * <p>Thread safety: filled by its thread in the first half, read by any thread in the second, emptied
 * by the batch's caller once every thread is done; the batch's barriers order the three. Allocates
 * only when a list grows.
 */
final class DeferredMerges {

    /** Ints between two owners' counts, and before the first: a cache line, so that no other thread's data shares one. */
    private static final int PAD = 16;
    private final int owners;
    private Guest[][] guests;
    private int[][] pages;
    private int[][] keys;
    private int[] counts;

    DeferredMerges(int owners) {
        this.owners = owners;
        guests = new Guest[owners][16];
        pages = new int[owners][16];
        keys = new int[owners][16];
        counts = new int[owners * PAD + PAD];
    }

    /**
     * The thread of {@code threads} that handles {@code key}'s unstable shard in a batch's second half:
     * each owns a run of neighbouring shards, whose locks and tables were made side by side.
     */
    static int ownerOf(int key, int threads) {
        return UnstableShards.shardOf(key) * threads / UnstableShards.SHARDS;
    }

    /**
     * Lists {@code page} of {@code guest}, filed under {@code key}, for the owner of {@code key}. Where its
     * lists cannot grow it throws the {@link OutOfMemoryError}, and they are as they were.
     */
    void add(Guest guest, int page, int key) {
        int owner = ownerOf(key, owners);
        int n = counts[PAD + owner * PAD];
        if (n == pages[owner].length) {
            // Replaced together: grown one by one, a failure left the keys shorter, and every later add overran them.
            Guest[] grownGuests = java.util.Arrays.copyOf(guests[owner], 2 * n);
            int[] grownPages = java.util.Arrays.copyOf(pages[owner], 2 * n);
            int[] grownKeys = java.util.Arrays.copyOf(keys[owner], 2 * n);
            guests[owner] = grownGuests;
            pages[owner] = grownPages;
            keys[owner] = grownKeys;
        }
        guests[owner][n] = guest;
        pages[owner][n] = page;
        keys[owner][n] = key;
        counts[PAD + owner * PAD] = n + 1;
    }

    int count(int owner) {
        return counts[PAD + owner * PAD];
    }

    Guest guest(int owner, int i) {
        return guests[owner][i];
    }

    int page(int owner, int i) {
        return pages[owner][i];
    }

    int key(int owner, int i) {
        return keys[owner][i];
    }

    /** Empties every list, dropping its guests. */
    void clear() {
        for (int owner = 0; owner < owners; owner++) {
            java.util.Arrays.fill(guests[owner], 0, count(owner), null);
            counts[PAD + owner * PAD] = 0;
        }
    }
}
