package io.samepage.core;

/**
 * How a guest's pages are held beyond the engine's page table, for guests whose memory something
 * other than the engine reads and writes directly: a KVM guest runs on host mappings of the frames
 * (mapped guest memory, module kvm-integration). A guest without one (the software page table) is read
 * and written only through {@link Guest}.
 *
 * <p>The {@link Guest}'s page table stays the source of truth; a mapping mirrors it. The engine calls
 * {@link #map} under the page's stripe lock every time the page's frame or its writability changes, and
 * always <em>before</em> the frame it leaves can be freed: a merge maps the page read-only onto the
 * shared frame; a copy-on-write break, an unmerge or a whole-page write maps it writable onto its new
 * private frame. The scanner calls {@link #writeProtect} on every page whose frame a merge would share
 * (the visited page and, for a new pair, the candidate) before the full compare, so that no write made
 * behind the engine's back lands between the compare and the remap; when the merge does not happen it
 * calls {@link #unprotect}.
 *
 * <p>A refused {@link #map} changes nothing in the engine: the page stays on the frame it had, and a
 * frame it was to map goes back to the pool. The mapping, though, may have changed: where the host's
 * remap takes the old mapping down before it can fail (Linux's {@code mmap(MAP_FIXED)}), an
 * implementation maps the old frame back, and a page where that fails too is <em>lost</em>: it maps no
 * frame at all, so an access behind the engine's back faults instead of reaching a frame the engine
 * does not hold for it. The engine needs to do nothing about it: its next {@link #map},
 * {@link #writeProtect} or {@link #unprotect} of the page maps it again (the last two onto the frame
 * the engine holds for it), and a write fault on it ({@link Guest#breakSharing}) does one of those.
 * A lost page never maps a frame the engine may free.
 *
 * <p>Writes behind the engine's back do not set the page's dirty bit, so the scanner asks
 * {@link #pagesWritten} at the start of every full scan which pages were written, and rehashes those.
 *
 * <p>Thread safety: the engine calls each method for one page with that page's stripe lock held,
 * and {@link #pagesWritten} from the scanner's thread with no lock held; different pages are mapped
 * concurrently. An implementation synchronizes its own state.
 */
public interface PageMapping {

    /**
     * The mapping of a guest held in software: nothing outside the engine maps its pages, so there is
     * nothing to mirror, every protection is granted, and nothing is written behind the engine's back.
     */
    PageMapping NONE = new PageMapping() {
        @Override
        public void map(int page, int frame, boolean writable) {
        }

        @Override
        public boolean writeProtect(int page) {
            return true;
        }

        @Override
        public void unprotect(int page) {
        }

        @Override
        public boolean pagesWritten(long[] bitmap) {
            return true;
        }

        @Override
        public void unmapAll() {
        }
    };

    /** Makes the mapping of a new guest of {@code pages} pages, page {@code p} on frame {@code firstFrame + p}. */
    @FunctionalInterface
    interface Factory {
        /**
         * @throws RuntimeException if the mapping cannot be made, having taken down whatever of it was made;
         *                          the guest is not created, and the run's memory is given back and reused
         */
        PageMapping create(int firstFrame, int pages);
    }

    /**
     * Maps {@code page} onto {@code frame}, read-only or writable. A writable map is a break and must
     * not be refused for lack of mapping budget (merging stops early enough to leave room for breaks).
     *
     * @throws RuntimeException if the host refuses; the page maps what it mapped before, or, lost, no
     *                          frame at all (see the class comment)
     */
    void map(int page, int frame, boolean writable);

    /**
     * Makes {@code page} read-only on the frame it maps, before a merge compares it; a lost page is
     * mapped again, read-only, onto the frame the engine holds for it.
     *
     * @return false, with nothing changed, if the page must not be merged (its mapping budget is
     *         spent): the merge is skipped
     * @throws RuntimeException if the host fails to (a failing mprotect); nothing changed (a lost page
     *                          stays lost), the merge is skipped and the scan reports {@code HOST_REFUSED}
     */
    boolean writeProtect(int page);

    /**
     * Makes {@code page} writable again after a {@link #writeProtect} that no merge followed, or on a
     * write fault of a page the engine holds private ({@link Guest#breakSharing}); a lost page is mapped
     * again, writable, onto the frame the engine holds for it. Idempotent.
     *
     * @throws RuntimeException if the host refuses; the page stays read-only, or lost (the scan reports
     *                          {@code HOST_REFUSED}, and the page's next write fault tries again)
     */
    void unprotect(int page);

    /**
     * Sets bit {@code p % 64} of {@code bitmap[p / 64]} for every page written behind the engine's back
     * since the last call, and forgets them (other bits are left as they are).
     *
     * @return false if it cannot tell (no dirty log): then every page counts as written, as it does if
     *         this throws
     */
    boolean pagesWritten(long[] bitmap);

    /**
     * Removes every page's mapping, once the guest is destroyed (or its creation failed after the mapping
     * was made) and before its frames are freed.
     *
     * @throws RuntimeException if the host refuses; the mapping is unchanged (the guest then stays live:
     *                          {@link Guest#destroy} throws and may be called again)
     */
    void unmapAll();
}
