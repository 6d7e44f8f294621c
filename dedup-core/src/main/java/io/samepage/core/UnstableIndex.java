package io.samepage.core;

import java.util.Arrays;

/**
 * A domain's unstable index: candidate guest pages by key (the fast hash folded to 32 bits), for the
 * current full scan. Pages whose contents differ but whose keys collide are all kept, so a key
 * collision never hides a candidate. A hash table of engine-wide page ids ({@link PageIds}) whose
 * buckets are chains threaded through the pages' own link and key in their {@link Guest}'s page
 * table; the table is one {@code int} per bucket and keeps between one and two pages per bucket, so
 * it costs at most 4 bytes per unique page beyond the page table's 16.
 *
 * <p>Like KSM's unstable tree this index is not kept exact: a page it names may have been written,
 * merged, zeroed or destroyed since it was filed. The scanner checks every candidate under the page's
 * lock and compares all 4096 bytes before it merges, so a stale entry costs a missed merge at worst,
 * and the whole index is emptied when the next full scan starts. Its chains stay sound meanwhile:
 * only the scanner writes the links and keys, a page is filed at most once per full scan, and a
 * destroyed guest's page ids are not reused before the index is emptied.
 *
 * <p>Thread safety: single writer, the scanner's thread. Allocates only when it grows.
 */
final class UnstableIndex {

    static final int NONE = -1;
    private static final int MIN_BUCKETS = 64;

    private final PageIds ids;
    private int[] heads = emptyTable(MIN_BUCKETS);
    private int entries;

    UnstableIndex(PageIds ids) {
        this.ids = ids;
    }

    /** The most recently filed page id under {@code key}, or {@link #NONE}. */
    int first(int key) {
        return withKey(heads[key & (heads.length - 1)], key);
    }

    /** The page id filed under {@code key} before {@code id} (itself filed under it), or {@link #NONE}. */
    int next(int id, int key) {
        return withKey(next(id), key);
    }

    /** Files page {@code id}, whose page table already holds {@code key}, under {@code key}. */
    void put(int key, int id) {
        Guest guest = ids.owner(id);
        int page = id - guest.table().basePageId();
        int bucket = key & (heads.length - 1);
        guest.table().setUnstableNext(page, heads[bucket]);
        heads[bucket] = id;
        if (++entries > 2 * heads.length) {
            rehash(2 * heads.length);
        }
    }

    /** Takes page {@code id}, filed under {@code key}, out; does nothing if it is not there. */
    void remove(int key, int id) {
        int bucket = key & (heads.length - 1);
        int previous = NONE;
        for (int at = heads[bucket]; at != NONE; at = next(at)) {
            if (at == id) {
                if (previous == NONE) {
                    heads[bucket] = next(at);
                } else {
                    Guest owner = ids.owner(previous);
                    owner.table().setUnstableNext(previous - owner.table().basePageId(), next(at));
                }
                entries--;
                return;
            }
            previous = at;
        }
    }

    /** Empties the index: the start of a full scan. */
    void clear() {
        Arrays.fill(heads, NONE);
        entries = 0;
    }

    /** Pages filed (KSM's {@code pages_unshared}). */
    int size() {
        return entries;
    }

    /** Bytes of the bucket table. */
    long metadataBytes() {
        return 4L * heads.length;
    }

    private int withKey(int from, int key) {
        for (int id = from; id != NONE; id = next(id)) {
            if (key(id) == key) {
                return id;
            }
        }
        return NONE;
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
        int[] old = heads;
        heads = emptyTable(buckets);
        for (int head : old) {
            int id = head;
            while (id != NONE) {
                Guest guest = ids.owner(id);
                int page = id - guest.table().basePageId();
                int after = guest.table().unstableNext(page);
                int bucket = guest.table().key(page) & (buckets - 1);
                guest.table().setUnstableNext(page, heads[bucket]);
                heads[bucket] = id;
                id = after;
            }
        }
    }

    private static int[] emptyTable(int buckets) {
        int[] table = new int[buckets];
        Arrays.fill(table, NONE);
        return table;
    }
}
