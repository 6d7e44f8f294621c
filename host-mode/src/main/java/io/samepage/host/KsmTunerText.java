package io.samepage.host;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * A {@link KsmTuner} pass as text, one line per decision: what was found, what it comes to, and each
 * knob with its reason. {@code samepage ksm tune} prints it; a daemon running the policy can log it.
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
        DuplicateEstimate.Potential p = report.potential();
        if (p.residentPages() > 0) {
            lines.add(String.format(Locale.ROOT, "estimate: read %d of %d resident mergeable pages (%.1f MiB): %d "
                            + "duplicate another page read, %d are all-zero%s%s; %.1f%% duplicates, about %.2f MiB "
                            + "could be shared",
                    p.pagesRead(), p.residentPages(), mib(p.pagesRead() * 4096), p.duplicatePages(), p.zeroPages(),
                    p.unreadablePages() > 0 ? ", " + p.unreadablePages() + " could not be read" : "",
                    p.ksmZeroPages() > 0 ? "; KSM's " + p.ksmZeroPages() + " zero pages (ksm_zero_pages) add as many" : "",
                    p.duplicatePercent(), mib(p.estimatedSavingBytes())));
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
            names.add(String.format(Locale.ROOT, "%d %s (%.1f MiB)", process.pid(), process.command(),
                    mib(process.residentBytes())));
        }
        return String.format(Locale.ROOT, "%d of %d processes%s: %s; %.1f MiB resident in mergeable regions%s",
                found.processes().size(), found.processesSeen(), unreadable, String.join(", ", names),
                mib(found.residentBytes()), how);
    }

    private static double mib(long bytes) {
        return bytes / MIB;
    }
}
