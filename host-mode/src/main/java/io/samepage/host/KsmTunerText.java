package io.samepage.host;

import java.math.BigInteger;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * A {@link KsmTuner} pass as text, one line per decision: what was found, what it comes to, and each
 * knob with its reason ({@link #lines}); and as named fields for JSON ({@link #fields}).
 * {@code samepage ksm tune} prints them; a daemon running the policy can log them.
 */
public final class KsmTunerText {

    private static final int PROCESSES_LISTED = 5;
    private static final double MIB = 1024.0 * 1024.0;

    private KsmTunerText() {
    }

    /** One line per decision: what was found, what it comes to, and each knob with its reason. */
    public static List<String> lines(KsmTuner.Report report) {
        List<String> lines = new ArrayList<>();
        MergeableProcesses.Found found = report.mergeable();
        lines.add("mergeable: " + processes(found));
        MergeableEstimate.Potential p = report.potential();
        if (p.residentPages() > 0) {
            lines.add(String.format(Locale.ROOT, "estimate: read %d of %d resident mergeable pages (%.1f MiB) once, "
                            + "a digest each, %d all-zero%s; KSM would reach pages_shared %d, pages_sharing %d, "
                            + "ksm_zero_pages %d (max_page_sharing %d, use_zero_pages %d)%s; %.1f%% saved, about "
                            + "%.2f MiB%s",
                    p.pagesRead(), p.residentPages(), mib(p.pagesRead() * 4096), p.zeroPages(),
                    p.unreadablePages() > 0 ? ", " + p.unreadablePages() + " could not be read" : "",
                    p.pagesShared(), p.pagesSharing(), p.ksmZeroPages(), p.maxPageSharing(), p.useZeroPages() ? 1 : 0,
                    p.ksmZeroPagesNow() > 0 ? "; KSM's " + p.ksmZeroPagesNow() + " zero pages now (ksm_zero_pages of "
                            + "the processes) add as many" : "",
                    p.duplicatePercent(), mib(p.estimatedSavingBytes()),
                    p.sampled() ? " (scaled from the sample to all resident pages)" : ""));
        }
        KsmTuner.Plan plan = report.plan();
        lines.add("decision: " + (plan.merge() ? "merge" : "stop") + ": " + plan.reason());
        for (KsmTuner.Step step : plan.steps()) {
            lines.add(step.knob().sysfsName() + ": " + (step.changes() ? step.oldValue() + " -> " + step.newValue()
                    : step.newValue() + " (kept)") + ": " + step.reason());
        }
        if (report.dryRun()) {
            lines.add("dry run: nothing written");
        } else if (report.written().isEmpty()) {
            lines.add("nothing to write");
        } else {
            List<String> written = new ArrayList<>();
            for (KnobChange change : report.written()) {
                written.add(change.toString());
            }
            lines.add("written: " + String.join(", ", written));
        }
        return lines;
    }

    private static String processes(MergeableProcesses.Found found) {
        String how = found.readAllSmaps() ? "; this kernel's ksm_stat does not say, so every smaps was read" : "";
        String unreadable = found.unreadable() > 0 ? ", " + found.unreadable() + " could not be read" : "";
        if (found.processes().isEmpty()) {
            return "none of " + found.processesSeen() + " processes has mergeable memory" + unreadable + how;
        }
        List<String> names = new ArrayList<>();
        for (MergeableProcesses.Process process : found.processes()) {
            if (names.size() == PROCESSES_LISTED) {
                names.add("and " + (found.processes().size() - PROCESSES_LISTED) + " more");
                break;
            }
            // A process names itself (prctl PR_SET_NAME): escaped, so the line stays one printable line.
            names.add(String.format(Locale.ROOT, "%d %s (%.1f MiB)", process.pid(),
                    MemoryMaps.escape(process.command(), Integer.MAX_VALUE), mib(process.residentBytes())));
        }
        return String.format(Locale.ROOT, "%d of %d processes%s: %s; %.1f MiB resident in mergeable regions%s",
                found.processes().size(), found.processesSeen(), unreadable, String.join(", ", names),
                mib(found.residentBytes()), how);
    }

    /**
     * The pass under the names {@code samepage ksm tune --json} prints, in order: numbers, booleans,
     * strings, and lists of maps of those. A knob's value is a number where it is one, else a string.
     */
    public static Map<String, Object> fields(KsmTuner.Report report) {
        Map<String, Object> root = new LinkedHashMap<>();
        root.put("dry_run", report.dryRun());
        root.put("decision", report.plan().merge() ? "merge" : "stop");
        root.put("reason", report.plan().reason());
        MergeableProcesses.Found found = report.mergeable();
        root.put("processes_seen", found.processesSeen());
        root.put("processes_unreadable", found.unreadable());
        root.put("read_every_smaps", found.readAllSmaps());
        List<Map<String, Object>> processes = new ArrayList<>();
        for (MergeableProcesses.Process process : found.processes()) {
            processes.add(map("pid", process.pid(), "command", process.command(),
                    "mergeable_resident_bytes", process.residentBytes()));
        }
        root.put("mergeable_processes", processes);
        MergeableEstimate.Potential p = report.potential();
        root.put("resident_pages", p.residentPages());
        root.put("pages_read", p.pagesRead());
        root.put("zero_pages", p.zeroPages());
        root.put("pages_shared", p.pagesShared());
        root.put("pages_sharing", p.pagesSharing());
        root.put("ksm_zero_pages", p.ksmZeroPages());
        root.put("max_page_sharing", p.maxPageSharing());
        root.put("use_zero_pages", p.useZeroPages());
        root.put("unreadable_pages", p.unreadablePages());
        root.put("ksm_zero_pages_now", p.ksmZeroPagesNow());
        root.put("sampled", p.sampled());
        root.put("duplicate_percent", p.duplicatePercent());
        root.put("estimated_saving_bytes", p.estimatedSavingBytes());
        root.put("mem_total_bytes", report.memory().totalBytes());
        root.put("mem_free_bytes", report.memory().freeBytes());
        List<Map<String, Object>> steps = new ArrayList<>();
        for (KsmTuner.Step step : report.plan().steps()) {
            steps.add(map("knob", step.knob().sysfsName(), "old", value(step.oldValue()), "new",
                    value(step.newValue()), "changes", step.changes(), "reason", step.reason()));
        }
        root.put("steps", steps);
        List<Map<String, Object>> written = new ArrayList<>();
        for (KnobChange change : report.written()) {
            written.add(map("knob", change.knob().sysfsName(), "old", value(change.oldValue()), "new",
                    value(change.newValue())));
        }
        root.put("written", written);
        return root;
    }

    /** A knob's value as sysfs shows it: a number where it is one, else the text. */
    public static Object value(String shown) {
        return shown.matches("-?[0-9]+") ? new BigInteger(shown) : shown;
    }

    private static Map<String, Object> map(Object... namesAndValues) {
        Map<String, Object> map = new LinkedHashMap<>();
        for (int i = 0; i < namesAndValues.length; i += 2) {
            map.put((String) namesAndValues[i], namesAndValues[i + 1]);
        }
        return map;
    }

    private static double mib(long bytes) {
        return bytes / MIB;
    }
}
