package io.samepage.cli;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.samepage.daemon.SourceEstimate;
import io.samepage.hashing.Pages;
import io.samepage.host.PageDigestEstimator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * What {@code samepage scan} prints when live sources are estimated ({@link SourceEstimate}): KSM's
 * counters at steady state under their sysfs names, per guest, and the distinct contents each pair of
 * guests shares, marked as an estimate ({@code "estimated": true}) in text and JSON alike.
 */
final class EstimateReport {

    /** Said once in every estimated report. */
    static final String ESTIMATED = "Estimated: live sources are read once and counted by 128-bit page digest "
            + "(no page kept, nothing merged); the counters are KSM's at steady state.";

    private EstimateReport() {
    }

    /** KSM's counters of the estimate, in sysfs order, then the estimate's own figures. */
    static Map<String, Long> counters(PageDigestEstimator.Estimate e) {
        Map<String, Long> c = new LinkedHashMap<>();
        c.put("pages_shared", e.pagesShared());
        c.put("pages_sharing", e.pagesSharing());
        c.put("pages_unshared", e.pagesUnshared());
        c.put("ksm_zero_pages", e.ksmZeroPages());
        c.put("stable_node_chains", e.stableNodeChains());
        c.put("stable_node_dups", e.stableNodeDups());
        c.put("pages_read", e.pagesRead());
        c.put("pages_of_zeros", e.zeroPages());
        c.put("distinct_contents", e.distinctContents());
        c.put("digest_table_bytes", e.tableBytes());
        return c;
    }

    static ObjectNode toJson(SourceEstimate.Result r) {
        PageDigestEstimator.Estimate e = r.estimate();
        ObjectNode root = CounterReport.newObject();
        root.put("estimated", true);
        root.put("estimate_method", ESTIMATED);
        root.put("max_page_sharing", e.maxPageSharing());
        root.put("use_zero_pages", e.useZeroPages() ? 1 : 0);
        counters(e).forEach(root::put);
        long total = 0;
        ArrayNode guests = root.putArray("guests");
        for (int g = 0; g < e.guests().size(); g++) {
            PageDigestEstimator.GuestEstimate ge = e.guests().get(g);
            total += r.guestPages().get(g);
            guests.addObject()
                    .put("name", ge.name())
                    .put("pages_total", r.guestPages().get(g))
                    .put("pages_read", ge.pagesRead())
                    .put("merging_pages", ge.mergingPages())
                    .put("zero_pages", ge.ksmZeroPages())
                    .put("pages_of_zeros", ge.zeroPages());
        }
        root.put("pages_total", total);
        root.put("pairs_complete", e.pairsComplete());
        ArrayNode pairs = root.putArray("pairs");
        for (PageDigestEstimator.Pair p : e.pairs()) {
            pairs.addObject()
                    .put("a", e.guests().get(p.a()).name())
                    .put("b", e.guests().get(p.b()).name())
                    .put("shared_contents", p.sharedContents());
        }
        ProcessReport.addToJson(root, r.loads());
        return root;
    }

    static String text(SourceEstimate.Result r) {
        PageDigestEstimator.Estimate e = r.estimate();
        StringBuilder out = new StringBuilder();
        out.append(String.format(Locale.ROOT, "%d source%s, %d pages read (%.2f MiB), one merge domain "
                        + "(max_page_sharing=%d, use_zero_pages=%d).%n%s%n%n", e.guests().size(),
                e.guests().size() == 1 ? "" : "s", e.pagesRead(), (double) e.pagesRead() * Pages.PAGE_SIZE
                        / CounterReport.MIB, e.maxPageSharing(), e.useZeroPages() ? 1 : 0, ESTIMATED));
        TextTable counters = new TextTable("counter", "value");
        counters(e).forEach(counters::row);
        out.append(counters.render()).append('\n');
        out.append(String.format(Locale.ROOT, "would save: %.2f MiB of guest memory ((pages_sharing + "
                + "ksm_zero_pages) x 4 KiB)%n%n", (double) e.savedPages() * Pages.PAGE_SIZE / CounterReport.MIB));
        TextTable guests = new TextTable("guest", "pages_total", "pages_read", "merging_pages", "zero_pages",
                "pages_of_zeros");
        for (int g = 0; g < e.guests().size(); g++) {
            PageDigestEstimator.GuestEstimate ge = e.guests().get(g);
            guests.row(ge.name(), r.guestPages().get(g), ge.pagesRead(), ge.mergingPages(), ge.ksmZeroPages(),
                    ge.zeroPages());
        }
        out.append(guests.render());
        List<PageDigestEstimator.Pair> pairs = e.pairs();
        if (!pairs.isEmpty()) {
            TextTable shared = new TextTable("guest", "with guest", "shared_contents");
            for (PageDigestEstimator.Pair p : pairs) {
                shared.row(e.guests().get(p.a()).name(), e.guests().get(p.b()).name(), p.sharedContents());
            }
            out.append("\nDistinct non-zero contents each pair of guests holds in common:\n\n").append(shared.render());
        }
        if (!e.pairsComplete()) {
            out.append("(pairwise figures incomplete: more than ").append(PageDigestEstimator.MAX_PAIRWISE_GUESTS)
                    .append(" guests, or too many distinct guest sets)\n");
        }
        return out.append(r.loads().isEmpty() ? "" : ProcessReport.text(r.loads())).toString();
    }
}
