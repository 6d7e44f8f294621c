package io.samepage.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.samepage.daemon.SourceEstimate;
import io.samepage.host.GuestSketch;
import io.samepage.host.PageDigestEstimator.Estimate;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/** {@code samepage scan} with live sources ({@link SourceEstimate}), marked {@code "estimated": true}. */
final class EstimateReport {

    private static final ObjectMapper JSON = new ObjectMapper();

    static final String ESTIMATED = "Estimated: live sources are read once and counted by 128-bit page digest "
            + "(no page kept, nothing merged); the counters are KSM's at steady state.";

    private EstimateReport() {
    }

    static ObjectNode json(SourceEstimate.Result r) {
        Estimate e = r.estimate();
        ObjectNode root = CounterReport.newObject().put("estimated", true).put("estimate_method", ESTIMATED)
                .put("max_page_sharing", e.maxPageSharing()).put("use_zero_pages", e.useZeroPages() ? 1 : 0);
        e.counters().forEach(root::put);
        root.set("guests", JSON.valueToTree(r.guestRows()));
        addSketches(root, e.guests().stream().map(g -> g.sketch()).toList());
        root.put("pages_total", r.guestPages().stream().mapToLong(Long::longValue).sum());
        root.put("pairs_complete", e.pairsComplete()).set("pairs", JSON.valueToTree(r.pairRows()));
        ProcessReport.addToJson(root, r.loads());
        return root;
    }

    /** Sets {@code sketch} in each entry of {@code root}'s {@code guests} array, in order. */
    static void addSketches(ObjectNode root, List<GuestSketch> sketches) {
        for (int g = 0; g < sketches.size(); g++) {
            ((ObjectNode) root.get("guests").get(g)).set("sketch", JSON.valueToTree(sketches.get(g).fields()));
        }
    }

    static String text(SourceEstimate.Result r) {
        Estimate e = r.estimate();
        TextTable counters = new TextTable("counter", "value");
        e.counters().forEach(counters::row);
        return String.format(Locale.ROOT, "Sources: %d, one merge domain (max_page_sharing=%d, use_zero_pages=%d)."
                        + "%n%s%n%n%s%nwould save: %.2f MiB of guest memory ((pages_sharing + ksm_zero_pages) x "
                        + "4 KiB)%n%n%s", e.guests().size(), e.maxPageSharing(), e.useZeroPages() ? 1 : 0, ESTIMATED,
                counters.render(), e.savedPages() / 256.0, table(r.guestRows()))
                + (e.pairs().isEmpty() ? "" : "\nDistinct non-zero contents each pair of guests holds in common"
                        + (e.pairsComplete() ? ":\n\n" : " (incomplete):\n\n") + table(r.pairRows()))
                + (r.loads().isEmpty() ? "" : ProcessReport.text(r.loads()));
    }

    /** One row per map, its keys the header. */
    private static String table(List<Map<String, Object>> rows) {
        TextTable table = new TextTable(rows.getFirst().keySet().toArray(String[]::new));
        rows.forEach(row -> table.row(row.values().toArray()));
        return table.render();
    }
}
