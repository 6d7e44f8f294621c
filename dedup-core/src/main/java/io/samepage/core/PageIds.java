package io.samepage.core;

import io.samepage.core.DedupException.Kind;
import java.util.ArrayList;
import java.util.BitSet;
import java.util.List;

/**
 * Engine-wide page ids: every guest page has one {@code int}, {@code base + page}, so the unstable
 * index can chain guest pages through a 4-byte link per page instead of keeping a table of 8-byte
 * (guest, page) pairs. Ids are handed out in chunks of {@value #CHUNK_PAGES} pages (16 MiB of guest
 * memory); a guest takes whole chunks, and {@link #owner} finds a page's guest with one array read.
 * The id space is 2^31 pages (8 TiB of guest memory at once).
 *
 * <p>A destroyed guest's chunks are not reused at once: the unstable index may still chain through
 * its pages until the scanner empties it at the start of the next full scan, so they wait in
 * quarantine until {@link #releaseQuarantined} (called then, or at the destroy if no index names any
 * page) and the old owner stays readable.
 *
 * <p>Thread safety: {@link #owner} is safe from any thread without a lock; the rest is synchronized.
 */
final class PageIds {

    static final int CHUNK_SHIFT = 12;
    static final int CHUNK_PAGES = 1 << CHUNK_SHIFT;
    /** Chunks in the 2^31-page id space. */
    static final int MAX_CHUNKS = 1 << (31 - CHUNK_SHIFT);

    /** Chunk to owning guest; replaced, never mutated, so readers need no lock. */
    private volatile Guest[] owners = new Guest[16];
    private final BitSet used = new BitSet();
    private final List<int[]> quarantined = new ArrayList<>();

    /**
     * Ids for {@code pages} pages of a new guest, all or nothing.
     *
     * @return the guest's first id
     * @throws DedupException if no run of free chunks is long enough
     */
    synchronized int allocate(int pages) {
        int chunks = (int) (((long) pages + CHUNK_PAGES - 1) >>> CHUNK_SHIFT);
        int start = 0;
        while (true) {
            start = used.nextClearBit(start);
            if ((long) start + chunks > MAX_CHUNKS) {
                throw new DedupException(Kind.POOL_EXHAUSTED, "engine page id space exhausted: no run of " + chunks + " free chunks of "
                        + CHUNK_PAGES + " pages among " + MAX_CHUNKS + "; destroyed guests' ids come back after "
                        + "the scanner's next full scan starts");
            }
            int taken = used.nextSetBit(start);
            if (taken < 0 || taken >= start + chunks) {
                break;
            }
            start = taken;
        }
        used.set(start, start + chunks);
        return start << CHUNK_SHIFT;
    }

    /** Makes {@code guest} the owner of the ids from {@link #allocate}; they resolve to it from now on. */
    synchronized void publish(Guest guest, int base) {
        int first = base >>> CHUNK_SHIFT;
        int last = (int) (((long) base + guest.pageCount() - 1) >>> CHUNK_SHIFT);
        Guest[] next = owners;
        if (last >= next.length) {
            next = java.util.Arrays.copyOf(next, Math.min(MAX_CHUNKS, Math.max(last + 1, 2 * next.length)));
        } else {
            next = next.clone();
        }
        for (int c = first; c <= last; c++) {
            next[c] = guest;
        }
        owners = next;
    }

    /** Gives back ids from {@link #allocate} that were never published (the guest was not created). */
    synchronized void unallocate(int base, int pages) {
        int chunks = (int) (((long) pages + CHUNK_PAGES - 1) >>> CHUNK_SHIFT);
        used.clear(base >>> CHUNK_SHIFT, (base >>> CHUNK_SHIFT) + chunks);
    }

    /** Puts a destroyed guest's ids in quarantine; they still resolve to it until released. */
    synchronized void quarantine(Guest guest) {
        quarantined.add(new int[] {guest.table().basePageId(), guest.pageCount()});
    }

    /** Frees every quarantined id. Only once nothing can name them: the unstable indexes are empty. */
    synchronized void releaseQuarantined() {
        if (quarantined.isEmpty()) {
            return;
        }
        Guest[] next = owners.clone();
        for (int[] range : quarantined) {
            int first = range[0] >>> CHUNK_SHIFT;
            int chunks = (int) (((long) range[1] + CHUNK_PAGES - 1) >>> CHUNK_SHIFT);
            for (int c = first; c < first + chunks; c++) {
                next[c] = null;
            }
            used.clear(first, first + chunks);
        }
        quarantined.clear();
        owners = next;
    }

    /** The guest that owns page id {@code id} (live, or destroyed and quarantined), or null. Lock free. */
    Guest owner(int id) {
        Guest[] byChunk = owners;
        int chunk = id >>> CHUNK_SHIFT;
        return id >= 0 && chunk < byChunk.length ? byChunk[chunk] : null;
    }

    /** Bytes of the chunk table. */
    synchronized long metadataBytes() {
        return 16 + 4L * owners.length + used.size() / 8;
    }
}
