package io.samepage.host;

/**
 * KSM's counters at steady state, summed over contents: what mm/ksm.c reaches once every page has
 * been scanned, when nothing changes, under {@code max_page_sharing}.
 *
 * <p>A content held by {@code n} pages: one page alone stays in the unstable tree
 * ({@code pages_unshared}). Otherwise KSM pages fill up to {@code max_page_sharing} mappers each, and a
 * chain of them forms past that: {@code n / mps} full KSM pages, one more for a remainder of two or
 * more, while a remainder of one page finds no partner and stays unshared. So the content needs
 * {@code ceil(n / mps)} frames and frees {@code n - ceil(n / mps)}: {@code pages_sharing}. A content
 * with more than one KSM page is a chain ({@code stable_node_chains}) of that many dups
 * ({@code stable_node_dups}).
 *
 * <p>Not thread safe.
 */
final class KsmTotals {

    long pagesShared;
    long pagesSharing;
    long pagesUnshared;
    long stableNodeChains;
    long stableNodeDups;

    /** Adds one content of {@code pages} pages (at least 1) under {@code maxPageSharing} (at least 2). */
    void content(long pages, int maxPageSharing) {
        if (pages < 1 || maxPageSharing < 2) {
            throw new IllegalArgumentException("pages " + pages + " < 1 or max_page_sharing " + maxPageSharing + " < 2");
        }
        if (pages == 1) {
            pagesUnshared++;
            return;
        }
        long rest = pages % maxPageSharing;
        long ksmPages = pages / maxPageSharing + (rest >= 2 ? 1 : 0);
        long alone = rest == 1 ? 1 : 0;
        pagesShared += ksmPages;
        pagesUnshared += alone;
        pagesSharing += pages - ksmPages - alone;
        if (ksmPages > 1) {
            stableNodeChains++;
            stableNodeDups += ksmPages;
        }
    }

    /** Frames the content of {@code pages} pages needs once merged: {@code ceil(pages / maxPageSharing)}. */
    static long frames(long pages, int maxPageSharing) {
        return (pages + maxPageSharing - 1) / maxPageSharing;
    }
}
