package io.samepage.cli;

import com.fasterxml.jackson.databind.node.ObjectNode;
import io.samepage.host.KernelKsm;
import io.samepage.host.KernelKsmException;
import io.samepage.host.KsmTuner;
import io.samepage.host.KsmTunerText;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/**
 * {@code samepage ksm tune}: one pass of the ksmtuned-style policy of {@link KsmTuner}, printed one line
 * per decision.
 */
@Command(
        name = "tune",
        sortOptions = false,
        description = {
            "Decides whether the host's kernel KSM should merge, and how fast, then sets it (as root). It finds "
                    + "the processes with mergeable memory (their /proc/PID/ksm_stat says ksm_mergeable: yes or "
                    + "ksm_merge_any: yes, or shows ksm_rmap_items > 0; only where ksm_stat lacks those lines is "
                    + "every process's smaps read, which is slower), reads their resident mergeable pages "
                    + "once (up to --sample-mib, evenly spread) into 128-bit digests, no copy kept, and derives the "
                    + "saving, pages_sharing + ksm_zero_pages under the kernel's max_page_sharing and use_zero_pages.",
            "",
            "If KSM would save less than --min-duplicate-percent of the pages read, or less than "
                    + "--min-saving-mib, KSM stops: run=2 if pages are merged (it unmerges them), else run=0. "
                    + "Otherwise KSM runs (run=1) at a rate set by the kernel's scan-time advisor "
                    + "(advisor_mode=scan-time: pages_to_scan sized so one full scan takes "
                    + "advisor_target_scan_time) or by ksmtuned's formula: pages_to_scan plus 300 if free memory "
                    + "(MemFree + Buffers + Cached) is below max(20%% of MemTotal, 2048 KiB), else minus 50, kept "
                    + "within 64 to 1250; sleep_millisecs = max(10, 10 x 16 GiB / MemTotal).",
            "",
        },
        footer = {
            "",
            "Exit codes: 0 success, whichever the decision; 1 failure while working (no KSM in this kernel, "
                    + "knobs not writable, a write the kernel refused); 2 bad usage or bad input (an option out "
                    + "of range, --rate advisor on a kernel without the advisor).",
        })
final class KsmTuneCommand implements Callable<Integer> {

    private static final long MAX_SAMPLE_MIB = 16_384;

    @CommandLine.Spec
    private CommandLine.Model.CommandSpec spec;

    @Mixin
    private HelpOption help;

    @Option(names = "--dry-run", description = "Decide and print what would change; write nothing (needs no root).")
    private boolean dryRun;

    @Option(names = "--json", description = "Print one JSON object: the decision, its reason, the estimate and "
            + "every knob step with its reason.")
    private boolean json;

    @Option(names = "--min-duplicate-percent", paramLabel = "PERCENT", defaultValue = "5",
            description = "The least share of the pages read that KSM must save (pages_sharing + ksm_zero_pages) "
                    + "for it to run, 0 to 100. Default: ${DEFAULT-VALUE}.")
    private double minDuplicatePercent;

    @Option(names = "--min-saving-mib", paramLabel = "MIB", defaultValue = "64",
            description = "The least estimated saving, in MiB, for KSM to run (scaled to all resident mergeable "
                    + "memory if only a sample was read). Default: ${DEFAULT-VALUE}.")
    private long minSavingMib;

    @Option(names = "--sample-mib", paramLabel = "MIB", defaultValue = "256",
            description = "The most resident mergeable memory to read for the estimate, 1 to 16384 MiB; beyond "
                    + "it 1 MiB runs are read evenly spread and the saving scaled, which misses twins outside "
                    + "them. Costs about 30 bytes of digest table per 4 KiB page read. Default: ${DEFAULT-VALUE}.")
    private long sampleMib;

    @Option(names = "--rate", paramLabel = "advisor|ksmtuned",
            description = "How to set the scan rate when KSM is to run: 'advisor' (the kernel's scan-time advisor, "
                    + "Linux 6.9+) or 'ksmtuned' (its pages_to_scan and sleep_millisecs formula). Default: "
                    + "advisor where the kernel has it, else ksmtuned.")
    private String rate;

    @Option(names = "--target-scan-time", paramLabel = "SECONDS",
            description = "With the advisor: advisor_target_scan_time, the seconds one full scan should take, "
                    + "at least 1. Default: keep the kernel's value (200 after boot).")
    private Long targetScanTime;

    @Mixin
    private KsmCommand.Directory directory;

    @Override
    public Integer call() {
        KsmTuner.Policy policy = policy();
        KsmTuner.Report report;
        try {
            report = KsmTuner.tune(new KernelKsm(directory.checked(), KernelKsm.PROC_DIRECTORY), policy, dryRun);
        } catch (KernelKsmException e) {
            throw KsmCommand.toCommandException(e);
        }
        spec.commandLine().getOut().print(json ? CounterReport.render(toJson(report))
                : String.join("\n", KsmTunerText.lines(report)) + "\n");
        return 0;
    }

    private KsmTuner.Policy policy() {
        if (!(minDuplicatePercent >= 0 && minDuplicatePercent <= 100)) {
            throw CommandException.badInput("--min-duplicate-percent " + minDuplicatePercent + ": must be 0 to 100");
        }
        CommandException.requireRange("--min-saving-mib", minSavingMib, 0, 1L << 30);
        CommandException.requireRange("--sample-mib", sampleMib, 1, MAX_SAMPLE_MIB);
        KsmTuner.Rate chosen = null;
        if (rate != null) {
            chosen = switch (rate) {
                case "advisor" -> KsmTuner.Rate.ADVISOR;
                case "ksmtuned" -> KsmTuner.Rate.KSMTUNED;
                default -> throw CommandException.badInput("--rate " + rate + ": must be advisor or ksmtuned");
            };
        }
        if (targetScanTime != null && targetScanTime < 1) {
            throw CommandException.badInput("--target-scan-time " + targetScanTime + ": must be at least 1 second");
        }
        if (targetScanTime != null && chosen == KsmTuner.Rate.KSMTUNED) {
            throw CommandException.badInput("--target-scan-time " + targetScanTime + ": sets the advisor's target, "
                    + "which --rate ksmtuned does not use");
        }
        return new KsmTuner.Policy(minDuplicatePercent, minSavingMib << 20, (sampleMib << 20) / 4096, chosen,
                targetScanTime);
    }

    static ObjectNode toJson(KsmTuner.Report report) {
        return new com.fasterxml.jackson.databind.ObjectMapper().valueToTree(KsmTunerText.fields(report));
    }
}
