package io.samepage.daemon;

import io.samepage.hashing.Pages;
import io.samepage.host.KernelKsm;
import io.samepage.host.PageDigestEstimator;
import java.lang.foreign.Arena;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The estimate of {@code samepage scan} with live sources: every source, files first, then processes,
 * read once into a {@link PageDigestEstimator} (one guest each, all in one merge domain), which keeps a
 * digest per page and no page. Nothing is merged; no engine and no frames are needed, so it costs the
 * digest table (at most 32 bytes per resident page), not the guests' memory. {@link SourceScan} is the
 * exact form, for files alone.
 */
public final class SourceEstimate {

    /**
     * What the estimate found.
     *
     * @param estimate   the counters, per guest and pairwise, in source order
     * @param guestPages each guest's size in pages, in the same order
     * @param loads      what was read of each live process, in order
     */
    public record Result(PageDigestEstimator.Estimate estimate, List<Long> guestPages, List<ProcessSource.Load> loads) {

        /** Each guest's figures under the names {@code samepage scan} prints, in order. */
        public List<Map<String, Object>> guestRows() {
            List<Map<String, Object>> rows = new ArrayList<>();
            for (int g = 0; g < estimate.guests().size(); g++) {
                PageDigestEstimator.GuestEstimate ge = estimate.guests().get(g);
                Map<String, Object> row = new LinkedHashMap<>();
                row.put("name", ge.name());
                row.put("pages_total", guestPages.get(g));
                row.put("pages_read", ge.pagesRead());
                row.put("merging_pages", ge.mergingPages());
                row.put("zero_pages", ge.ksmZeroPages());
                row.put("pages_of_zeros", ge.zeroPages());
                rows.add(row);
            }
            return rows;
        }

        /** Each pair of guests by name and the distinct non-zero contents both hold ({@code shared_contents}). */
        public List<Map<String, Object>> pairRows() {
            List<Map<String, Object>> rows = new ArrayList<>();
            for (PageDigestEstimator.Pair p : estimate.pairs()) {
                Map<String, Object> row = new LinkedHashMap<>();
                row.put("a", estimate.guests().get(p.a()).name());
                row.put("b", estimate.guests().get(p.b()).name());
                row.put("shared_contents", p.sharedContents());
                rows.add(row);
            }
            return rows;
        }
    }

    private SourceEstimate() {
    }

    /**
     * Reads every source once and estimates what KSM would merge under {@code maxPageSharing} and
     * {@code useZeroPages}.
     *
     * @throws DaemonException {@link DaemonException.Kind#CONFIG} if {@code maxPageSharing < 2} (KSM's rule);
     *                         {@link DaemonException.Kind#SOURCE} or {@link DaemonException.Kind#FAILED} as
     *                         {@link SourceFile#loadInto} and {@link ProcessSource#loadInto} throw
     */
    public static Result run(List<SourceFile> files, List<ProcessSource> processes, int maxPageSharing,
                             boolean useZeroPages) {
        if (maxPageSharing < 2) {
            throw new DaemonException(DaemonException.Kind.CONFIG, "max_page_sharing " + maxPageSharing
                    + ": must be at least 2");
        }
        long expected = 0;
        for (SourceFile file : files) {
            expected += file.bytes() / Pages.PAGE_SIZE;
        }
        for (ProcessSource process : processes) {
            expected += process.residentPages();
        }
        PageDigestEstimator estimator = new PageDigestEstimator(expected);
        List<Long> sizes = new ArrayList<>();
        try (Arena arena = Arena.ofConfined()) {
            SourceFile.ChunkBuffer buffer = SourceFile.ChunkBuffer.allocate(arena);
            for (SourceFile file : files) {
                estimator.beginGuest(file.name());
                file.estimateInto(estimator, buffer);
                sizes.add(file.bytes() / Pages.PAGE_SIZE);
            }
        }
        List<ProcessSource.Load> loads = new ArrayList<>();
        KernelKsm kernelKsm = KernelKsm.system();
        for (ProcessSource process : processes) {
            estimator.beginGuest(process.name());
            loads.add(process.estimateInto(estimator, kernelKsm));
            sizes.add(process.bytes() / Pages.PAGE_SIZE);
        }
        return new Result(estimator.estimate(maxPageSharing, useZeroPages), List.copyOf(sizes), List.copyOf(loads));
    }
}
