package io.samepage.core;

/**
 * The pages one scanner thread found ready to merge in the first half of a batch ({@link ScanWorkers}),
 * in lists by key: {@code lists} runs of neighbouring unstable shards ({@link #ownerOf}), one list a
 * shard when {@code lists} is {@link UnstableShards#SHARDS}, as the scanner makes them. So in the second
 * half each shard's index is changed by one thread, whose cache keeps its lines, instead of by every
 * thread in turn, and a chunk of one shard's pages is filed under one hold of its lock
 * ({@link DeferredFiling}).
 *
 * <p>Thread safety: filled by its thread in the first half, read by any thread in the second, emptied
 * by the batch's caller once every thread is done; the batch's barriers order the three. Allocates
 * only when a list grows.
 */
final class DeferredMerges {

    /**
     * The most pages one thread lists in a part of a batch, a part's worth ({@link Scanner#PART_PAGES}):
     * once its lists hold that many a thread merges the rest of its part at once ({@link #full}), so a part
     * of any size grows them no further.
     */
    static final int CAPACITY = Scanner.PART_PAGES;
    /** Ints between two lists' counts, and before the first: a cache line, so that no other thread's data shares one. */
    private static final int PAD = 16;
    private final int lists;
    private Guest[][] guests;
    private int[][] pages;
    private int[][] keys;
    private int[] counts;
    /** Pages in all the lists. */
    private int size;

    DeferredMerges(int lists) {
        this.lists = lists;
        guests = new Guest[lists][16];
        pages = new int[lists][16];
        keys = new int[lists][16];
        counts = new int[lists * PAD + PAD];
    }

    /**
     * The thread of {@code threads} that handles {@code key}'s unstable shard in a batch's second half:
     * each owns a run of neighbouring shards, whose locks and tables were made side by side.
     */
    static int ownerOf(int key, int threads) {
        return UnstableShards.shardOf(key) * threads / UnstableShards.SHARDS;
    }

    /**
     * Lists {@code page} of {@code guest}, filed under {@code key}, for the list of {@code key}. Where its
     * lists cannot grow it throws the {@link OutOfMemoryError}, and they are as they were.
     */
    void add(Guest guest, int page, int key) {
        int list = ownerOf(key, lists);
        int n = counts[PAD + list * PAD];
        if (n == pages[list].length) {
            // Replaced together: grown one by one, a failure left the keys shorter, and every later add overran them.
            Guest[] grownGuests = java.util.Arrays.copyOf(guests[list], 2 * n);
            int[] grownPages = java.util.Arrays.copyOf(pages[list], 2 * n);
            int[] grownKeys = java.util.Arrays.copyOf(keys[list], 2 * n);
            guests[list] = grownGuests;
            pages[list] = grownPages;
            keys[list] = grownKeys;
        }
        guests[list][n] = guest;
        pages[list][n] = page;
        keys[list][n] = key;
        counts[PAD + list * PAD] = n + 1;
        size++;
    }

    /** Pages in all the lists. */
    int size() {
        return size;
    }

    /** True once the lists hold {@value #CAPACITY} pages: the scanner merges the rest of its part at once. */
    boolean full() {
        return size >= CAPACITY;
    }

    int count(int list) {
        return counts[PAD + list * PAD];
    }

    Guest guest(int list, int i) {
        return guests[list][i];
    }

    int page(int list, int i) {
        return pages[list][i];
    }

    int key(int list, int i) {
        return keys[list][i];
    }

    /** Bytes of the lists ({@link MetadataSizes}): this object, its arrays of lists, each list and the counts. */
    long metadataBytes() {
        long bytes = MetadataSizes.object(4 * MetadataSizes.REFERENCE + Integer.BYTES)
                + 3 * MetadataSizes.array(lists, MetadataSizes.REFERENCE) + MetadataSizes.array(counts.length, Integer.BYTES);
        for (int l = 0; l < lists; l++) {
            bytes += MetadataSizes.array(guests[l].length, MetadataSizes.REFERENCE)
                    + 2 * MetadataSizes.array(pages[l].length, Integer.BYTES);     // pages and keys grow together
        }
        return bytes;
    }

    /** Empties every list, dropping its guests. */
    void clear() {
        for (int list = 0; list < lists; list++) {
            java.util.Arrays.fill(guests[list], 0, count(list), null);
            counts[PAD + list * PAD] = 0;
        }
        size = 0;
    }
}
