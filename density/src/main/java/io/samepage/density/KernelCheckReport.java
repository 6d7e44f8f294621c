package io.samepage.density;

import com.fasterxml.jackson.databind.node.ObjectNode;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * The report's cross-check of the engine modes' host memory against the kernel ({@link KernelView}): its
 * must-show line, its Markdown section and its JSON fields. Every engine run of the report is checked:
 * (a), (b) and (c) at every N, and the further runs of (b) at the largest N.
 */
final class KernelCheckReport {

    private static final double MIB = 1 << 20;

    private KernelCheckReport() {
    }

    /** One checked run: its label in the report, and its result. */
    private record Row(String label, ModeResult result) {
    }

    private static List<Row> rows(DensityResults results) {
        List<Row> rows = new ArrayList<>();
        for (Mode mode : List.of(Mode.NO_DEDUP, Mode.POST_LOAD, Mode.PRE_LOAD)) {
            for (ModeResult r : results.results(mode)) {
                rows.add(new Row("(" + mode.letter() + ") N=" + r.guests(), r));
            }
            List<ModeResult> runs = results.runsAtLargest(mode);
            for (int i = 1; i < runs.size(); i++) {
                ModeResult rerun = runs.get(i);
                rows.add(new Row("(" + mode.letter() + ") N=" + rerun.guests() + ", run " + (i + 1), rerun));
            }
        }
        rows.removeIf(row -> row.result().kernel() == null);
        return rows;
    }

    /**
     * The must-show: NOT met if any run's pool mapping (or a cgroup of this process alone) disagrees with
     * the model beyond the tolerance, naming each such run; not measured if a run's mapping could not be
     * read whole and none disagreed; else met, with the largest difference.
     */
    static MustShow mustShow(DensityResults results) {
        String name = "(a), (b) and (c): the kernel holds for the engine's pool what the model counts, within "
                + KernelView.POOL_TOLERANCE_PAGES + " pages (" + KernelView.POOL_TOLERANCE_PAGES * 4096 / 1024
                + " KiB), every run";
        List<Row> rows = rows(results);
        List<String> disagree = new ArrayList<>();
        String unmeasured = null;
        Row largest = null;
        for (Row row : rows) {
            KernelView k = row.result().kernel();
            Boolean agrees = k.agrees();
            if (Boolean.FALSE.equals(agrees)) {
                disagree.add(row.label() + ": " + disagreement(k));
            } else if (agrees == null && unmeasured == null) {
                unmeasured = row.label() + ": " + k.pool().note();
            } else if (agrees != null && (largest == null || Math.abs(k.poolDifferencePages())
                    > Math.abs(largest.result().kernel().poolDifferencePages()))) {
                largest = row;
            }
        }
        if (!disagree.isEmpty()) {
            return new MustShow(name, String.join("; ", disagree), false);
        }
        if (rows.isEmpty() || unmeasured != null) {
            return new MustShow(name, rows.isEmpty() ? "no engine run was checked" : unmeasured, null);
        }
        KernelView k = largest.result().kernel();
        return new MustShow(name, format("%d runs; the largest difference %+d pages (%s: model %.1f MiB of frames, "
                + "the pool's mapping %.1f MiB)", rows.size(), k.poolDifferencePages(), largest.label(),
                k.modelFrameBytes() / MIB, held(k) / MIB), true);
    }

    private static String disagreement(KernelView k) {
        StringBuilder s = new StringBuilder();
        if (Boolean.FALSE.equals(k.poolAgrees())) {
            s.append(format("model %.1f MiB of frames, the pool's mapping holds %.1f MiB (%+d pages",
                    k.modelFrameBytes() / MIB, held(k) / MIB, k.poolDifferencePages()));
            PoolPages p = k.pool();
            if (p.largeFolioPages() > p.residentInLargeFolios()) {
                s.append(format("; %.1f MiB of it the unmapped rest of split huge pages",
                        (p.largeFolioPages() - p.residentInLargeFolios()) * 4096 / MIB));
            }
            s.append(')');
        }
        if (k.cgroupAlone() && !k.coarseAgrees(k.cgroupRiseBytes())) {
            s.append(s.isEmpty() ? "" : "; ").append(format("the cgroup, this process alone, rose %.1f MiB for a "
                    + "model of %.1f MiB", k.cgroupRiseBytes() / MIB, k.modelHostBytes() / MIB));
        }
        return s.toString();
    }

    private static long held(KernelView k) {
        return k.pool().heldPages() * 4096;
    }

    /** The section "Host memory against the kernel": a row per engine run, then how to read it. */
    static void appendMarkdown(StringBuilder md, DensityResults results) {
        List<Row> rows = rows(results);
        if (rows.isEmpty()) {
            return;
        }
        md.append("\n## Host memory against the kernel\n\n")
                .append("| run | model: frames, MiB | the pool's mapping, MiB | difference, pages | model: total, MiB "
                        + "| MemAvailable fell, MiB | cgroup rose, MiB | verdict |\n")
                .append("|---|---:|---:|---:|---:|---:|---:|---|\n");
        for (Row row : rows) {
            KernelView k = row.result().kernel();
            md.append("| ").append(row.label())
                    .append(format(" | %.1f | ", k.modelFrameBytes() / MIB))
                    .append(k.pool().heldPages() < 0 ? "–" : format("%.1f", held(k) / MIB)).append(" | ")
                    .append(k.poolAgrees() == null ? "–" : format("%+d", k.poolDifferencePages()))
                    .append(format(" | %.1f | ", k.modelHostBytes() / MIB))
                    .append(coarse(k, k.memAvailableFallBytes())).append(" | ")
                    .append(coarse(k, k.cgroupRiseBytes())).append(k.cgroupAlone() ? " (alone)" : "").append(" | ")
                    .append(k.agrees() == null ? "not measured" : k.agrees() ? "agrees" : "**DISAGREES**")
                    .append(" |\n");
        }
        KernelView first = rows.getFirst().result().kernel();
        Path cgroup = first.after().cgroupFile();
        md.append("\nThe pool's mapping: the pages of the engine's pool the kernel holds in RAM or swap "
                        + "(`/proc/self/pagemap` over the pool's addresses), each huge page counted whole "
                        + "(`/proc/kpageflags`) where the kernel may back the pool with huge pages (")
                .append(hugePages(first.pool()))
                .append("). It should equal the model's frames; the verdict allows ")
                .append(KernelView.POOL_TOLERANCE_PAGES).append(" pages either way (`KernelView` says why). ")
                .append("MemAvailable and the cgroup (").append(cgroup == null ? "none readable here" : "`" + cgroup + "`")
                .append(") changed by the figure shown since just before the run's engine was made, against the "
                        + "model's total (frames and metadata); they count other processes, so they are coarse: a "
                        + "value marked \"outside\" is more than ")
                .append(KernelView.COARSE_TOLERANCE_PERCENT).append("% (at least ")
                .append(KernelView.COARSE_TOLERANCE_MIB).append(" MiB) off, and only a cgroup that held this process "
                        + "alone sets the verdict. Kernel KSM's figures, (d), are the kernel's own counters, so it "
                        + "has no row here.\n");
    }

    private static String hugePages(PoolPages pool) {
        if (pool.residentPages() < 0) {
            return "not read here: " + pool.note();
        }
        return pool.hugePagesEligible() ? "it may here" : "it may not here: `THPeligible 0`";
    }

    private static String coarse(KernelView k, Long bytes) {
        if (bytes == null) {
            return "–";
        }
        return format("%.1f", bytes / MIB) + (k.coarseAgrees(bytes) ? "" : " (outside)");
    }

    /** The JSON of one run's cross-check; sizes in bytes, null where not measured. */
    static void putJson(ObjectNode node, KernelView k) {
        PoolPages p = k.pool();
        node.put("model_frame_bytes", k.modelFrameBytes());
        node.put("model_host_bytes", k.modelHostBytes());
        node.put("pool_resident_bytes", p.residentPages() < 0 ? null : p.residentPages() * 4096);
        node.put("pool_swapped_bytes", p.residentPages() < 0 ? null : p.swappedPages() * 4096);
        node.put("pool_huge_pages_eligible", p.hugePagesEligible());
        node.put("pool_large_folio_bytes", p.largeFolioPages() < 0 ? null : p.largeFolioPages() * 4096);
        node.put("pool_held_bytes", p.heldPages() < 0 ? null : held(k));
        node.put("pool_difference_pages", k.poolAgrees() == null ? null : k.poolDifferencePages());
        node.put("pool_tolerance_pages", KernelView.POOL_TOLERANCE_PAGES);
        node.put("mem_available_fall_bytes", k.memAvailableFallBytes());
        node.put("cgroup_file", k.after().cgroupFile() == null ? null : k.after().cgroupFile().toString());
        node.put("cgroup_rise_bytes", k.cgroupRiseBytes());
        node.put("cgroup_alone", k.cgroupAlone());
        node.put("coarse_tolerance_bytes", k.coarseToleranceBytes());
        node.put("agrees", k.agrees());
        node.put("note", p.note());
    }

    private static String format(String pattern, Object... args) {
        return String.format(Locale.ROOT, pattern, args);
    }
}
