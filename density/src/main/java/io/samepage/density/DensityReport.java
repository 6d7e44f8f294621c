package io.samepage.density;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.time.Instant;
import java.util.List;
import java.util.Locale;

/**
 * {@code density.json} and {@code density.md} (which the command also prints) from one run's
 * {@link DensityResults}: inputs, host memory per mode and N, the engine modes' host memory beside what
 * the kernel says of it ({@link KernelCheckReport}), time and CPU-seconds to 99% of the final
 * sharing, guests that fit in the budget, and each must-show with its numbers and verdict; and {@code
 * density.png} ({@link DensityChart}). JSON keys are snake_case; sizes are bytes, times seconds; a figure
 * that was not measured is null. Both texts are rendered once, so what is printed is what is written.
 */
public final class DensityReport {

    private static final ObjectMapper JSON = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);
    private static final double MIB = 1 << 20;

    private final DensityResults results;
    private final List<MustShow> mustShows;
    private final String commandLine;
    /** The running code's commit ({@link SourceCommit}), or null if not known. */
    private final String commit = SourceCommit.ofRunningCode();
    private final String json;
    private final String markdown;

    /**
     * Renders the report of {@code results}.
     *
     * @param commandLine the command that ran the suite, as the report quotes it
     */
    public DensityReport(DensityResults results, String commandLine) {
        this.results = results;
        this.mustShows = MustShow.check(results);
        this.commandLine = commandLine;
        this.json = renderJson();
        this.markdown = renderMarkdown();
    }

    List<MustShow> mustShows() {
        return mustShows;
    }

    /** {@code density.json}. */
    public String json() {
        return json;
    }

    /** {@code density.md}. */
    public String markdown() {
        return markdown;
    }

    /**
     * The report's files by name, in order: {@code density.json}, {@code density.md} and the chart,
     * {@code density.png}. The caller writes them (the CLI: each to a temporary file, then moved into
     * place, so a failed write leaves the last report whole).
     */
    public java.util.Map<String, byte[]> files() {
        java.util.Map<String, byte[]> files = new java.util.LinkedHashMap<>();
        files.put("density.json", json.getBytes(java.nio.charset.StandardCharsets.UTF_8));
        files.put("density.md", markdown.getBytes(java.nio.charset.StandardCharsets.UTF_8));
        files.put("density.png", DensityChart.png(results));
        return files;
    }

    private String renderJson() {
        ObjectNode root = JSON.createObjectNode();
        root.put("command", commandLine);
        root.put("commit", commit);
        root.put("date", Instant.now().toString());
        root.put("java", System.getProperty("java.vm.name") + " " + System.getProperty("java.vm.version"));
        root.put("cpus", Runtime.getRuntime().availableProcessors());
        root.put("wall_seconds", results.wallSeconds());
        PageMix c = results.content();
        ObjectNode inputs = root.putObject("inputs");
        ArrayNode guests = inputs.putArray("guests");
        for (int n : results.guestCounts()) {
            guests.add(n);
        }
        inputs.put("guest_mib", c.guestBytes() >> 20);
        inputs.put("image", c.image().toString());
        inputs.put("unique_percent", c.uniquePercent());
        inputs.put("seed", c.seed());
        inputs.put("budget_mib", results.budgetMib());
        inputs.put("ksm_timeout_seconds", results.ksmTimeoutSeconds());
        ObjectNode content = root.putObject("content");
        content.put("pages_per_guest", c.pagesPerGuest());
        content.put("image_blocks", c.imageBlocks());
        content.put("image_pages", c.imagePages());
        content.put("distinct_nonzero_image_pages", results.distinctImagePages());
        content.put("written_after_boot_pages", c.writtenAfterBootPages());
        content.put("zero_pages", c.zeroPages());
        content.put("unique_pages", c.uniquePages());
        putNumber(root, "index_build_seconds", results.indexBuildSeconds());
        ObjectNode modes = root.putObject("modes");
        for (Mode mode : Mode.values()) {
            ObjectNode node = modes.putObject(mode.key());
            node.put("title", mode.title());
            node.put("note", results.note(mode));
            ArrayNode array = node.putArray("results");
            for (ModeResult r : results.results(mode)) {
                array.add(json(r));
            }
            List<ModeResult> runs = results.runsAtLargest(mode);
            if (runs.size() > 1) {
                ArrayNode runsNode = node.putArray("runs_at_largest_n");    // the first is in results too
                runs.forEach(r -> runsNode.add(json(r)));
            }
            if (!results.rerunNotes(mode).isEmpty()) {
                ArrayNode notesNode = node.putArray("rerun_notes");
                results.rerunNotes(mode).forEach(notesNode::add);
            }
            Fit fit = results.fit(mode);
            ObjectNode fitNode = node.putObject("fit_in_budget");
            fitNode.put("guests", fit.guests() < 0 ? null : fit.guests());
            putNumber(fitNode, "per_guest_bytes", fit.perGuestBytes());
            putNumber(fitNode, "base_bytes", fit.baseBytes());
        }
        putFloor(root.putObject("merge_floor"));
        ArrayNode checks = root.putArray("must_show");
        for (MustShow m : mustShows) {
            checks.addObject().put("claim", m.name()).put("measured", m.measured()).put("met", m.met());
        }
        try {
            return JSON.writeValueAsString(root) + "\n";
        } catch (JsonProcessingException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** The merge floor's runs at the largest N, their median, and (b) and (d) against it ({@link MergeFloor}). */
    private void putFloor(ObjectNode node) {
        node.put("guests", results.largestGuests());
        ArrayNode notes = node.putArray("notes");
        results.floorNotes().forEach(notes::add);
        ArrayNode runs = node.putArray("runs");
        for (MergeFloor f : results.floors()) {
            runs.addObject().put("pages_freed", f.pagesFreed()).put("cpu_seconds", f.cpuSeconds())
                    .put("pages_per_cpu_second", f.pagesPerCpuSecond());
        }
        putNumber(node, "median_pages_per_cpu_second", floorMedian());
        putNumber(node, "b_over_floor", medianRate(Mode.POST_LOAD) / floorMedian());
        putNumber(node, "floor_over_d", floorMedian() / medianRate(Mode.KSM_FULL_RATE));
    }

    /** The merge floor's median pages per CPU-second; NaN without a run. */
    private double floorMedian() {
        return TimedRuns.median(results.floors().stream().mapToDouble(MergeFloor::pagesPerCpuSecond).sorted().toArray());
    }

    /** The median pages per CPU-second of {@code mode}'s runs at the largest N; NaN if one has no time to 99%. */
    private double medianRate(Mode mode) {
        List<ModeResult> runs = results.runsAtLargest(mode);
        return runs.isEmpty() || runs.stream().anyMatch(r -> r.at99() == null) ? Double.NaN
                : new TimedRuns(runs).medianRate();
    }

    private void appendFloor(StringBuilder md) {
        md.append("\n## The merge floor, N=").append(results.largestGuests()).append("\n\n");
        List<MergeFloor> floors = results.floors();
        if (!floors.isEmpty()) {
            double[] rates = floors.stream().mapToDouble(MergeFloor::pagesPerCpuSecond).sorted().toArray();
            md.append(String.format(Locale.ROOT, "%.0f pages per CPU-second (%d runs, %.0f to %.0f, %d pages freed "
                    + "each): the reads, hashes, compares and frees a hashing merge of this mix must make, on one "
                    + "thread, with its duplicates known in advance. (b) merges at %s of it; the floor is %s.%n",
                    floorMedian(), rates.length, rates[0], rates[rates.length - 1], floors.getFirst().pagesFreed(),
                    ratio(medianRate(Mode.POST_LOAD) / floorMedian(), "", "no rate (a run of (b) has no time to 99%)"),
                    ratio(floorMedian() / medianRate(Mode.KSM_FULL_RATE), "x (d) at full rate",
                            "not compared with (d), which has no rate in this run")));
        }
        for (String note : results.floorNotes()) {
            md.append(floors.isEmpty() ? "" : "\n").append("The merge floor: ").append(note).append('\n');
        }
    }

    private static String ratio(double value, String unit, String missing) {
        return Double.isFinite(value) ? String.format(Locale.ROOT, "%.2f%s", value, unit) : missing;
    }

    private static ObjectNode json(ModeResult r) {
        ObjectNode node = JSON.createObjectNode();
        node.put("guests", r.guests());
        node.put("ran", r.ran());
        node.put("host_bytes", r.ran() ? r.hostBytes() : null);
        node.put("metadata_bytes", r.ran() && r.metadataBytes() >= 0 ? r.metadataBytes() : null);   // -1: not measured
        node.put("saved_pages", r.savedPages());
        SharingTrace.Point p = r.at99();
        putNumber(node, "seconds_to_99_percent", p == null ? Double.NaN : p.seconds());
        putNumber(node, "cpu_seconds_to_99_percent", p == null ? Double.NaN : p.cpuSeconds());
        putNumber(node, "pages_merged_per_cpu_second", p == null ? Double.NaN : p.pagesPerCpuSecond());
        node.put("timed_out", r.timedOut());
        node.put("note", r.note());
        if (r.kernel() != null) {
            KernelCheckReport.putJson(node.putObject("kernel"), r.kernel());
        }
        return node;
    }

    private static void putNumber(ObjectNode node, String key, double value) {
        if (Double.isFinite(value)) {
            node.put(key, value);
        } else {
            node.putNull(key);
        }
    }

    private String renderMarkdown() {
        PageMix c = results.content();
        StringBuilder md = new StringBuilder();
        md.append("# Density: guests of ").append(c.guestBytes() >> 20).append(" MiB from one image\n\n");
        md.append("`").append(commandLine).append("` at commit ")
                .append(commit == null ? "unknown (no git checkout holds the running code)" : "`" + commit + "`").append(", ")
                .append(String.format(Locale.ROOT, "%.0f s", results.wallSeconds())).append(", ")
                .append(Runtime.getRuntime().availableProcessors()).append(" CPUs, ")
                .append(System.getProperty("java.vm.name")).append(' ').append(System.getProperty("java.vm.version"))
                .append(".\n\n");
        md.append(String.format(Locale.ROOT, "Each guest: %d pages; %d image blocks of `%s` (%s distinct non-zero), "
                        + "%d of them written after boot; %d zeroed; %d unique (%d%%); seed 0x%x.%n%n",
                c.pagesPerGuest(), c.imagePages(), c.image(),
                results.distinctImagePages() < 0 ? "?" : Long.toString(results.distinctImagePages()),
                c.writtenAfterBootPages(), c.zeroPages(), c.uniquePages(), c.uniquePercent(), c.seed()));
        md.append("## Host memory, MiB\n\n| guests |");
        for (Mode mode : Mode.values()) {
            md.append(' ').append(mode.title()).append(" |");
        }
        md.append("\n|---:|").append("---:|".repeat(Mode.values().length)).append('\n');
        for (int n : results.guestCounts()) {
            md.append("| ").append(n).append(" |");
            for (Mode mode : Mode.values()) {
                ModeResult r = results.at(mode, n);
                md.append(' ').append(r == null || !r.ran() ? "–" : String.format(Locale.ROOT, "%.1f", r.hostMib()))
                        .append(r != null && r.timedOut() ? " (at timeout)" : "").append(" |");
            }
            md.append('\n');
        }
        KernelCheckReport.appendMarkdown(md, results);
        md.append("\n## Seconds / CPU-seconds to 99% of the final sharing\n\n| guests |");
        for (Mode mode : Mode.values()) {
            if (mode.timed()) {
                md.append(' ').append(mode.title()).append(" |");
            }
        }
        md.append("\n|---:|").append("---:|".repeat(4)).append('\n');
        for (int n : results.guestCounts()) {
            md.append("| ").append(n).append(" |");
            for (Mode mode : Mode.values()) {
                if (mode.timed()) {
                    md.append(' ').append(timeCell(results.at(mode, n))).append(" |");
                }
            }
            md.append('\n');
        }
        appendRuns(md);
        md.append("\n## Guests that fit in ").append(results.budgetMib()).append(" MiB\n\n")
                .append("| mode | MiB per further guest | shared MiB | guests |\n|---|---:|---:|---:|\n");
        for (Mode mode : Mode.values()) {
            Fit fit = results.fit(mode);
            md.append("| ").append(mode.title()).append(" | ")
                    .append(fit.guests() < 0 ? "–" : String.format(Locale.ROOT, "%.1f", fit.perGuestBytes() / MIB))
                    .append(" | ")
                    .append(fit.guests() < 0 ? "–" : String.format(Locale.ROOT, "%.1f", fit.baseBytes() / MIB))
                    .append(" | ").append(fit.guests() < 0 ? "–" : Long.toString(fit.guests())).append(" |\n");
        }
        if (results.guestCounts().length == 1) {
            md.append("\nOne guest count only: each line goes through the origin (no shared part measured), so every mode's "
                    + "shared MiB is 0 and its fit counts the shared part once per guest; give two or more counts.\n");
        }
        md.append("\n## Must show (at the largest N)\n\n");
        for (MustShow m : mustShows) {
            md.append("- ").append(m.name()).append(": ").append(m.measured()).append(": **").append(m.verdict())
                    .append("**\n");
        }
        appendFloor(md);
        md.append("\n## Notes\n\n");
        if (Double.isFinite(results.indexBuildSeconds())) {
            md.append(String.format(Locale.ROOT, "- The image index was built once in %.2f s, before (c), and is not "
                    + "counted in its times (an index is built once per image, offline).%n", results.indexBuildSeconds()));
        }
        for (Mode mode : Mode.values()) {
            if (results.note(mode) != null) {
                md.append("- ").append(mode.title()).append(": ").append(results.note(mode)).append('\n');
            }
            for (ModeResult r : results.results(mode)) {
                if (r.note() != null && mode != Mode.CONTAINER) {
                    md.append("- ").append(mode.title()).append(", N=").append(r.guests()).append(": ")
                            .append(r.note()).append('\n');
                }
            }
            for (String note : results.rerunNotes(mode)) {
                md.append("- ").append(mode.title()).append(", N=").append(results.largestGuests()).append(", ")
                        .append(note).append('\n');
            }
        }
        return md.toString();
    }

    /** Each run of the modes that ran more than once at the largest N, whose medians the must-shows take. */
    private void appendRuns(StringBuilder md) {
        int n = results.largestGuests();
        for (Mode mode : Mode.values()) {
            List<ModeResult> runs = results.runsAtLargest(mode);
            if (runs.size() < 2) {
                continue;
            }
            md.append("\n").append(mode.title()).append(", N=").append(n).append(", every run (the first is the table's): ");
            for (int i = 0; i < runs.size(); i++) {
                ModeResult r = runs.get(i);
                SharingTrace.Point p = r.at99();
                md.append(i == 0 ? "" : "; ").append(timeCell(r)).append(p == null ? ""
                        : String.format(Locale.ROOT, " s, %.0f pages per CPU-second", p.pagesPerCpuSecond()))
                        .append(r.timedOut() && p != null ? " (at timeout)" : "");
            }
            md.append(".\n");
        }
    }

    private static String timeCell(ModeResult r) {
        if (r == null || !r.ran()) {
            return "–";
        }
        SharingTrace.Point p = r.at99();
        if (p == null) {
            return r.timedOut() ? String.format(Locale.ROOT, "> %.0f s (not reached)", r.limitSeconds()) : "–";
        }
        return String.format(Locale.ROOT, "%.2f / %.2f", p.seconds(), p.cpuSeconds());
    }
}
