package io.samepage.bench;

import io.samepage.core.DedupEngine;
import io.samepage.core.EngineCounters;
import io.samepage.core.Guest;
import io.samepage.core.ScanKnobs;
import io.samepage.hashing.Pages;
import java.io.IOException;
import java.lang.management.ManagementFactory;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * The engine's memory, stage by stage, for {@value #GUESTS} guests of 512 MiB (2 GiB) of the
 * half-duplicated workload ({@link EngineWorkload}): the process's anonymous RSS ({@code RssAnon} of
 * {@code /proc/self/status}, which includes the Java heap, where the engine's metadata lives) and the
 * engine's own accounting ({@code metadataBytes()}, frames in use, counters), from an empty engine to
 * written guests, merged guests and {@code run=2}. Not a JMH benchmark: it measures state, not time,
 * and a fork of its own keeps the RSS clean, so {@link EngineReport} runs it in a separate JVM.
 *
 * <p>Metadata per guest page is the page tables and the domain's two index tables over the guest
 * pages; metadata per frame is the frame pool's arrays over its capacity (they are sized for the whole
 * pool when the engine starts). The reference is KSM's {@code struct ksm_rmap_item}, 64 bytes per
 * guest page it tracks (x86_64), before its stable tree nodes.
 *
 * <p>Usage: {@code java --enable-native-access=ALL-UNNAMED -cp jmh-benchmarks/target/benchmarks.jar
 * io.samepage.bench.EngineMemoryReport [OUT_DIR]} (default {@code target/bench}); writes
 * {@code engine-memory.json} and {@code engine-memory.md} there.
 */
public final class EngineMemoryReport {

    static final int GUESTS = 4;
    static final long GUEST_BYTES = 512L << 20;
    static final int KSM_RMAP_ITEM_BYTES = 64;
    static final int TARGET_BYTES_PER_PAGE = 16;
    static final int TARGET_BYTES_PER_FRAME = 16;

    private final List<Map<String, Object>> stages = new ArrayList<>();
    private final com.sun.management.ThreadMXBean threads =
            (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();
    private long allocatedAtLastStage = threads.getCurrentThreadAllocatedBytes();

    private EngineMemoryReport() {
    }

    public static void main(String[] args) throws IOException {
        Path out = Path.of(args.length > 0 ? args[0] : "target/bench");
        Files.createDirectories(out);
        Map<String, Object> report = new EngineMemoryReport().measure();
        Files.writeString(out.resolve("engine-memory.json"), Json.write(report));
        String table = table(report);
        Files.writeString(out.resolve("engine-memory.md"), table);
        System.out.print(table);
    }

    private Map<String, Object> measure() {
        long guestPages = GUESTS * GUEST_BYTES >>> Pages.PAGE_SHIFT;
        stage("JVM started", null);
        try (DedupEngine engine = EngineWorkload.engine(GUESTS * GUEST_BYTES, false)) {
            long capacityFrames = engine.context().poolBytes() >>> Pages.PAGE_SHIFT;
            long poolMetadata = engine.metadataBytes();
            stage("engine created (pool reserved, no domain)", engine);
            Guest[] guests = EngineWorkload.writeHalfDuplicated(engine, GUESTS, GUEST_BYTES);
            stage("guests written", engine);
            engine.scanner().scanFullPass();
            engine.scanner().scanFullPass();
            EngineCounters merged = EngineWorkload.requireConverged(engine, guestPages, "after two full scans");
            stage("merged (two full scans)", engine);
            long pageTables = 0;
            for (Guest guest : guests) {
                pageTables += guest.metadataBytes();
            }
            long indexTables = merged.metadataBytes() - poolMetadata - pageTables;
            engine.knobs().run(ScanKnobs.RUN_UNMERGE);
            engine.scanner().doWork();
            stage("unmerged (run=2)", engine);

            Map<String, Object> inputs = new LinkedHashMap<>();
            inputs.put("guests", GUESTS);
            inputs.put("guestBytes", GUEST_BYTES);
            inputs.put("guestPages", guestPages);
            inputs.put("composition", "half duplicated: even pages have one twin (same page of the partner guest), "
                    + "odd pages unique; random content");
            inputs.put("seed", EngineWorkload.SEED);
            inputs.put("poolBytes", engine.context().poolBytes());
            inputs.put("poolCapacityFrames", capacityFrames);

            Map<String, Object> metadata = new LinkedHashMap<>();
            metadata.put("totalBytes", merged.metadataBytes());
            metadata.put("poolBytes", poolMetadata);
            metadata.put("pageTableBytes", pageTables);
            metadata.put("indexTableBytes", indexTables);
            metadata.put("bytesPerFrameOfCapacity", (double) poolMetadata / capacityFrames);
            metadata.put("bytesPerFrameInUse", (double) poolMetadata / (merged.framesInUse() - 1));
            metadata.put("pageTableBytesPerGuestPage", (double) pageTables / guestPages);
            metadata.put("indexBytesPerGuestPage", (double) indexTables / guestPages);
            metadata.put("indexBytesPerIndexedEntry", (double) indexTables / (merged.pagesUnshared() + merged.pagesShared()));
            metadata.put("bytesPerGuestPage", (double) (pageTables + indexTables) / guestPages);
            metadata.put("allBytesPerGuestPage", (double) merged.metadataBytes() / guestPages);
            metadata.put("budgetBytes", TARGET_BYTES_PER_PAGE * guestPages + TARGET_BYTES_PER_FRAME * capacityFrames);
            metadata.put("ksmRmapItemBytesPerGuestPage", KSM_RMAP_ITEM_BYTES);
            metadata.put("targetBytesPerGuestPage", TARGET_BYTES_PER_PAGE);
            metadata.put("targetBytesPerFrame", TARGET_BYTES_PER_FRAME);

            Map<String, Object> report = new LinkedHashMap<>();
            report.put("inputs", inputs);
            report.put("metadataAfterMerge", metadata);
            report.put("stages", stages);
            report.put("marginalCosts", marginalCosts());
            return report;
        }
    }

    /**
     * What one more frame and one more guest page cost, from the engine's accounting of engines and
     * guests of two sizes (slope and fixed part), checked against the heap the JVM allocated while
     * creating the larger of each (the arrays are the allocation, so the two should agree).
     */
    private Map<String, Object> marginalCosts() {
        long smallPool = 1L << 30;
        long largePool = 2L << 30;
        long smallGuest = 256L << 20;
        long largeGuest = 1L << 30;
        Map<String, Object> costs = new LinkedHashMap<>();
        try (DedupEngine small = probeEngine(smallPool)) {
            long before = threads.getCurrentThreadAllocatedBytes();
            try (DedupEngine large = probeEngine(largePool)) {
                long allocated = threads.getCurrentThreadAllocatedBytes() - before;
                double perFrame = (double) (large.metadataBytes() - small.metadataBytes())
                        / ((largePool - smallPool) >>> Pages.PAGE_SHIFT);
                costs.put("bytesPerFrame", perFrame);
                costs.put("fixedPoolBytes", large.metadataBytes() - Math.round(perFrame * (largePool >>> Pages.PAGE_SHIFT)));
                costs.put("heapAllocatedCreatingEngineBytes", allocated);
                costs.put("engineReportedBytes", large.metadataBytes());

                var domain = large.createDomain("probe");
                Guest a = large.createGuest(domain, "small", smallGuest);
                before = threads.getCurrentThreadAllocatedBytes();
                Guest b = large.createGuest(domain, "large", largeGuest);
                allocated = threads.getCurrentThreadAllocatedBytes() - before;
                double perPage = (double) (b.metadataBytes() - a.metadataBytes())
                        / ((largeGuest - smallGuest) >>> Pages.PAGE_SHIFT);
                costs.put("pageTableBytesPerGuestPage", perPage);
                costs.put("fixedBytesPerGuest", b.metadataBytes() - Math.round(perPage * (largeGuest >>> Pages.PAGE_SHIFT)));
                costs.put("heapAllocatedCreatingGuestBytes", allocated);
                costs.put("guestReportedBytes", b.metadataBytes());
            }
        }
        return costs;
    }

    private static DedupEngine probeEngine(long poolBytes) {
        return EngineWorkload.engine(poolBytes - EngineWorkload.POOL_HEADROOM_BYTES, false);
    }

    private void stage(String name, DedupEngine engine) {
        long allocated = threads.getCurrentThreadAllocatedBytes();
        Map<String, Object> s = new LinkedHashMap<>();
        s.put("stage", name);
        s.put("rssAnonBytes", procStatusBytes("RssAnon:"));
        s.put("vmRssBytes", procStatusBytes("VmRSS:"));
        s.put("heapAllocatedSinceLastStageBytes", allocated - allocatedAtLastStage);
        if (engine != null) {
            EngineCounters c = engine.counters();
            s.put("framesInUse", c.framesInUse());
            s.put("frameBytes", c.framesInUse() * Pages.PAGE_SIZE);
            s.put("metadataBytes", c.metadataBytes());
            s.put("pagesShared", c.pagesShared());
            s.put("pagesSharing", c.pagesSharing());
            s.put("pagesUnshared", c.pagesUnshared());
            s.put("generalProfit", c.generalProfit());
        }
        stages.add(s);
        allocatedAtLastStage = threads.getCurrentThreadAllocatedBytes();
    }

    /** A {@code kB} line of {@code /proc/self/status}, in bytes; -1 where there is none (not Linux). */
    static long procStatusBytes(String field) {
        try {
            for (String line : Files.readAllLines(Path.of("/proc/self/status"), java.nio.charset.StandardCharsets.ISO_8859_1)) {
                if (line.startsWith(field)) {
                    return Long.parseLong(line.substring(field.length()).replace("kB", "").strip()) * 1024;
                }
            }
        } catch (IOException | NumberFormatException e) {
            return -1;
        }
        return -1;
    }

    @SuppressWarnings("unchecked")
    static String table(Map<String, Object> report) {
        Map<String, Object> inputs = (Map<String, Object>) report.get("inputs");
        Map<String, Object> m = (Map<String, Object>) report.get("metadataAfterMerge");
        StringBuilder md = new StringBuilder();
        md.append(String.format(Locale.ROOT, "%d guests of %d MiB (%d guest pages), half duplicated, seed 0x%X; "
                        + "frame pool %d MiB (%d frames).%n%n",
                inputs.get("guests"), (Long) inputs.get("guestBytes") >> 20, inputs.get("guestPages"),
                inputs.get("seed"), (Long) inputs.get("poolBytes") >> 20, inputs.get("poolCapacityFrames")));
        md.append("| stage | RssAnon MiB | frames in use (MiB) | metadata MiB | heap allocated in stage MiB | pages_shared | pages_sharing |\n");
        md.append("|---|---:|---:|---:|---:|---:|---:|\n");
        for (Map<String, Object> s : (List<Map<String, Object>>) report.get("stages")) {
            md.append(String.format(Locale.ROOT, "| %s | %.0f | %s | %s | %.1f | %s | %s |%n", s.get("stage"),
                    mib((Long) s.get("rssAnonBytes")),
                    s.containsKey("framesInUse") ? String.format(Locale.ROOT, "%d (%.0f)", s.get("framesInUse"),
                            mib((Long) s.get("frameBytes"))) : "",
                    s.containsKey("metadataBytes") ? String.format(Locale.ROOT, "%.1f", mib((Long) s.get("metadataBytes"))) : "",
                    mib((Long) s.get("heapAllocatedSinceLastStageBytes")),
                    s.getOrDefault("pagesShared", ""), s.getOrDefault("pagesSharing", "")));
        }
        md.append("\nHeap allocated in stage: what the JVM allocated on the measuring thread (the metadata arrays, index "
                + "tables grown by rehashing with their discarded predecessors, and the content generator's garbage).\n");
        List<Map<String, Object>> stageList = (List<Map<String, Object>>) report.get("stages");
        Map<String, Object> written = stageList.get(2);
        Map<String, Object> merged = stageList.get(3);
        md.append(String.format(Locale.ROOT, "Merging lowered RssAnon by %.0f MiB; the frames it freed hold %.0f MiB.%n",
                mib((Long) written.get("rssAnonBytes") - (Long) merged.get("rssAnonBytes")),
                mib((Long) written.get("frameBytes") - (Long) merged.get("frameBytes"))));
        Map<String, Object> marginal = (Map<String, Object>) report.get("marginalCosts");
        double pageSlope = (Double) marginal.get("pageTableBytesPerGuestPage");
        double frameSlope = (Double) marginal.get("bytesPerFrame");
        double perPage = (Double) m.get("bytesPerGuestPage");
        long budget = (Long) m.get("budgetBytes");
        long total = (Long) m.get("totalBytes");
        md.append(String.format(Locale.ROOT, "%nMetadata after merging, as the engine counts it (`metadataBytes()`): %.1f MiB in all, "
                        + "%.2f bytes per guest page.%n%n", mib(total), (Double) m.get("allBytesPerGuestPage")));
        md.append("| part | grows with | bytes | target | |\n|---|---|---:|---:|---|\n");
        md.append(String.format(Locale.ROOT, "| page tables | guest page | %.2f + %d per guest | %d | %s |%n", pageSlope,
                marginal.get("fixedBytesPerGuest"), TARGET_BYTES_PER_PAGE, pageSlope <= TARGET_BYTES_PER_PAGE ? "met" : "NOT met"));
        md.append(String.format(Locale.ROOT, "| frame pool arrays | frame of pool capacity | %.2f + %d per engine | %d | %s |%n",
                frameSlope, marginal.get("fixedPoolBytes"), TARGET_BYTES_PER_FRAME,
                frameSlope <= TARGET_BYTES_PER_FRAME ? "met" : "NOT met"));
        md.append(String.format(Locale.ROOT, "| domain index tables (stable, unstable, registry) | indexed frame or unique page | %.2f per entry "
                        + "(%.2f per guest page here) | none | |%n",
                (Double) m.get("indexBytesPerIndexedEntry"), (Double) m.get("indexBytesPerGuestPage")));
        md.append(String.format(Locale.ROOT, "| all (this workload) | | %.1f MiB | %.1f MiB (16 per guest page + 16 per frame) | %s |%n",
                mib(total), mib(budget), total <= budget ? "met" : "NOT met"));
        md.append(String.format(Locale.ROOT, "%nPer guest page, page tables and index tables: %.2f bytes (KSM: %d per rmap_item). "
                        + "Heap the JVM allocated creating a 2 GiB-pool engine: %d bytes (engine reports %d); "
                        + "creating a 1 GiB guest: %d bytes (guest reports %d).%n",
                perPage, KSM_RMAP_ITEM_BYTES, marginal.get("heapAllocatedCreatingEngineBytes"), marginal.get("engineReportedBytes"),
                marginal.get("heapAllocatedCreatingGuestBytes"), marginal.get("guestReportedBytes")));
        return md.toString();
    }

    private static double mib(long bytes) {
        return bytes / (double) (1 << 20);
    }
}
