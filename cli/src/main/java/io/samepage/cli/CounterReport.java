package io.samepage.cli;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.samepage.core.EngineCounters;
import io.samepage.core.GuestCounters;
import io.samepage.daemon.DaemonMetrics;
import io.samepage.hashing.Pages;
import java.util.List;
import java.util.Map;

/**
 * The engine's counters as {@code scan} and {@code demo} print them, under Linux KSM's names
 * (ARCHITECTURE.md, "Counters"), for text and JSON. The map from the Java API's camelCase to the names an
 * operator knows from {@code /sys/kernel/mm/ksm} is the daemon's ({@link DaemonMetrics#ksmCounters}), so
 * {@code scan}, {@code stat} and {@code /metrics} agree.
 */
final class CounterReport {

    /** Bytes in one MiB, for the human output. */
    static final double MIB = 1 << 20;

    private static final ObjectMapper JSON = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);

    private CounterReport() {
    }

    /** KSM's engine-wide counters, then {@code pages_total} and {@code metadata_bytes}: the daemon's map. */
    static Map<String, Long> engineCounters(EngineCounters c) {
        return DaemonMetrics.ksmCounters(c);
    }

    /** The engine's counters and a {@code guests} array, as one JSON object. */
    static ObjectNode toJson(EngineCounters engine, List<GuestCounters> guests) {
        ObjectNode root = JSON.createObjectNode();
        engineCounters(engine).forEach(root::put);
        ArrayNode array = root.putArray("guests");
        for (GuestCounters g : guests) {
            array.addObject()
                    .put("name", g.name())
                    .put("domain", g.domain())
                    .put("pages_total", g.pagesTotal())
                    .put("merging_pages", g.mergingPages())
                    .put("zero_pages", g.zeroPages())
                    .put("profit", g.profit());
        }
        return root;
    }

    /** A fresh, empty JSON object. */
    static ObjectNode newObject() {
        return JSON.createObjectNode();
    }

    /** {@code fields} (maps, lists and plain values) as a JSON object, in their order. */
    static ObjectNode tree(Map<String, ?> fields) {
        return JSON.valueToTree(fields);
    }

    /** {@code node} as indented JSON, ending in a newline. */
    static String render(ObjectNode node) {
        try {
            return JSON.writeValueAsString(node) + "\n";
        } catch (JsonProcessingException e) {
            throw new IllegalStateException("a tree of plain values always serializes", e);
        }
    }

    /** The engine-wide counters as a two-column table: name, value. */
    static String engineTable(EngineCounters c) {
        TextTable table = new TextTable("counter", "value");
        engineCounters(c).forEach(table::row);
        return table.render();
    }

    /** One row per guest: its name, domain and {@code ksm_stat} counters. */
    static String guestTable(List<GuestCounters> guests) {
        TextTable table = new TextTable("guest", "domain", "pages_total", "merging_pages", "zero_pages", "profit");
        for (GuestCounters g : guests) {
            table.row(g.name(), g.domain(), g.pagesTotal(), g.mergingPages(), g.zeroPages(), g.profit());
        }
        return table.render();
    }

    /** Guest memory that merging freed: {@code (pages_sharing + ksm_zero_pages) x 4096}, in bytes. */
    static long mergedBytes(EngineCounters c) {
        return (c.pagesSharing() + c.ksmZeroPages()) * Pages.PAGE_SIZE;
    }
}
