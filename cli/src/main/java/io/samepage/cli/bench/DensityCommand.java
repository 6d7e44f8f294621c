package io.samepage.cli.bench;

import io.samepage.cli.HelpOption;
import io.samepage.cli.CommandException;
import io.samepage.density.DemoMerge;
import io.samepage.density.DensityException;
import io.samepage.density.DensityReport;
import io.samepage.density.DensityResults;
import io.samepage.density.DensitySuite;
import io.samepage.density.DensitySuite.KsmDefaults;
import io.samepage.density.PageMix;
import io.samepage.density.ReportFiles;
import java.lang.management.ManagementFactory;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/**
 * {@code samepage bench density}: how many guests fit, measured beside kernel KSM and containers.
 *
 * <p>The options, their checks and the output; the measuring is the density suite's ({@link
 * DensitySuite}, in the density module). It writes {@code density.json}, {@code density.md} and
 * {@code density.png} under {@code --out} ({@link DensityReport}) and prints the Markdown, which ends with
 * each must-show and whether this run met it. The must-shows are reported, not enforced: the exit code is
 * 0 either way.
 */
@Command(
        name = "density",
        sortOptions = false,
        description = {
            "For each N of --guests: N guests of --guest-mib with the same content, held (a) without "
                    + "deduplication, (b) by Samepage scanning after load, (c) by Samepage loading through the "
                    + "image index, (d) by kernel KSM in a helper process (full rate at every N; KSM's defaults at "
                    + "the largest N), (e) as containers of the image would be (a model). Reports host memory, "
                    + "seconds and CPU-seconds to 99%% of the final sharing, and guests that fit in --budget-mib; "
                    + "writes density.json, density.md and density.png under --out and prints the Markdown.",
            "",
        },
        footer = {
            "",
            "Guest content, the same bytes in every mode (seeded): the image's first blocks at the same addresses "
                    + "in every guest ((75 - P)%% of the guest, capped by the image's size), of which 5%% of the "
                    + "guest's pages get 64 bytes of their own after boot; 25%% zeroed by the guest; P%% unique "
                    + "(--unique-percent, default 25). Why 25: for guests booted from one image, published figures "
                    + "put sharing above 30%% (VMware vSphere docs: nearly identical VMs free more than 30%%; "
                    + "Difference Engine, OSDI 2008: up to 90%% with patching and compression), while dissimilar "
                    + "real machines share under 15%% outside zero pages (Barker et al., USENIX ATC 2012). 25%% "
                    + "is a choice within the range for similar guests, not a measurement.",
            "",
            "Host memory: (a) a frame per guest page; (b), (c) frames the guests hold x 4096 plus the engine's metadata; "
                    + "(d) guest bytes - (pages_sharing + ksm_zero_pages) x 4096 + KSM's rmap items as /proc/PID/ksm_stat "
                    + "counts them; (e) one copy of the loaded image blocks + each guest's unique and written pages.",
            "Every run of (a), (b), (c) is checked against the pages the kernel holds for the frame pool (/proc/self/pagemap).",
            "Time to 99%%: from the start of scanning for (b); from the start of the index loads for (c), "
                    + "excluding the guests' own writes; from run=1 for (d). CPU-seconds: the engine's thread for "
                    + "(b), and for (c) with the image loader's workers; ksmd's utime + stime (/proc/PID/stat) for (d).",
            "Before the first N, (b), (c) and the merge floor run once with one guest, unrecorded, so the JIT has compiled "
                    + "them before anything is timed. At the largest N, (b) and (d) at full rate run --rate-runs times.",
            "Each run of (b) there is followed by the merge floor: its reads, hashes, compares and frees (docs/density.md).",
            "Fit: a line through the two largest N (per-guest growth and shared base), then (budget - base) / per-guest.",
            "",
            "Kernel KSM needs root and /sys/kernel/mm/ksm; elsewhere (d) is skipped with a note. It takes the lock "
                    + DensitySuite.KSM_LOCK_FILE + ", sets use_zero_pages=1 and the rate, and always writes run=2 and "
                    + "restores every knob it changed afterwards, on Ctrl-C too.",
            "",
            "Exit codes: 0 success (whether or not each must-show was met; the output says); 1 failure while "
                    + "working (a helper process that failed, an exhausted frame pool, KSM busy with other "
                    + "processes); 2 bad usage or bad input (a value out of range, a missing or unreadable image, an "
                    + "--out that cannot be written, guests larger than this host's memory), with one line on "
                    + "stderr naming it.",
        })
public final class DensityCommand implements Callable<Integer> {

    @CommandLine.Spec
    private CommandLine.Model.CommandSpec spec;

    @Mixin
    private HelpOption help;

    @Option(names = "--guests", paramLabel = "N", split = ",", defaultValue = "1,2,4,8,16",
            description = "Guest counts to measure, each 1 to " + MAX_GUESTS + ". Default: ${DEFAULT-VALUE}.")
    private int[] guests;

    @Option(names = "--guest-mib", paramLabel = "MIB", defaultValue = "256",
            description = "Size of each guest in MiB, 1 to " + MAX_GUEST_MIB + ". Default: ${DEFAULT-VALUE}.")
    private int guestMib;

    @Option(names = "--image", paramLabel = "DIR|FILE", defaultValue = "${sys:java.home}",
            description = "The image the guests boot from: a directory tree or a file (raw disk image). "
                    + "Default: the JDK this command runs on, ${DEFAULT-VALUE}.")
    private Path image;

    @Option(names = "--unique-percent", paramLabel = "P", defaultValue = "" + PageMix.DEFAULT_UNIQUE_PERCENT,
            description = "Pages unique to each guest, in percent, 0 to " + PageMix.MAX_UNIQUE_PERCENT
                    + ". Default: ${DEFAULT-VALUE}.")
    private int uniquePercent;

    @Option(names = "--budget-mib", paramLabel = "MIB", defaultValue = "4096",
            description = "The host memory budget for the guests-that-fit figure, 1 to " + MAX_GUESTS + " x "
                    + MAX_GUEST_MIB + ". Default: ${DEFAULT-VALUE}.")
    private long budgetMib;

    @Option(names = "--seed", paramLabel = "SEED", defaultValue = "" + PageMix.DEFAULT_SEED,
            description = "Seed of the guest content. Default: ${DEFAULT-VALUE}.")
    private long seed;

    @Option(names = "--ksm-timeout-seconds", paramLabel = "S", defaultValue = "120",
            description = "The longest one kernel KSM run may take, 1 to 86400; a run that has not settled by "
                    + "then is reported as such. Default: ${DEFAULT-VALUE}.")
    private long ksmTimeoutSeconds;

    @Option(names = "--ksm-defaults", paramLabel = "WHEN", defaultValue = "largest",
            description = "Where to run KSM at its defaults (100 pages every 20 ms, about 5000 pages/s): "
                    + "${COMPLETION-CANDIDATES}. Default: ${DEFAULT-VALUE} (the largest N only).")
    private KsmDefaults ksmDefaults;

    @Option(names = "--rate-runs", paramLabel = "R", defaultValue = "3", description = "Runs of (b) and of (d) at full "
            + "rate at the largest N, 1 to 9; the must-shows comparing them take the medians. Default: ${DEFAULT-VALUE}.")
    private int rateRuns;

    @Option(names = "--no-ksm", description = "Skip mode (d): no helper process, no change to kernel KSM.")
    private boolean noKsm;

    @Option(names = "--json", description = "Print density.json instead of the Markdown.")
    private boolean json;

    @Option(names = "--out", paramLabel = "DIR", defaultValue = "target/density",
            description = "Directory for density.json, .md and .png; created if missing. Default: ${DEFAULT-VALUE}.")
    private Path out;

    static final int MAX_GUESTS = 1024;
    static final int MAX_GUEST_MIB = 1 << 20;

    @Override
    public Integer call() {
        int[] counts = validate();
        DensitySuite.Settings settings = new DensitySuite.Settings(image, counts, guestMib, uniquePercent, seed,
                budgetMib, ksmTimeoutSeconds, ksmDefaults, !noKsm, rateRuns);
        DensityReport report;
        try {
            DensityResults results = DensitySuite.run(settings, step -> {
                spec.commandLine().getErr().println("samepage bench density: " + step);
                spec.commandLine().getErr().flush();
            });
            report = new DensityReport(results, commandLine());
        } catch (DensityException e) {
            throw e.kind() == DensityException.Kind.BAD_IMAGE
                    ? CommandException.badInput("--image " + image + ": " + e.getMessage())
                    : CommandException.failure(e.getMessage());
        }
        ReportFiles.write(out, report.files());
        spec.commandLine().getOut().print(json ? report.json() : report.markdown());
        return 0;
    }

    private int[] validate() {
        int[] counts = Arrays.stream(guests).sorted().distinct().toArray();
        for (int n : counts) {
            CommandException.requireRange("--guests", n, 1, MAX_GUESTS);
        }
        CommandException.requireRange("--guest-mib", guestMib, 1, MAX_GUEST_MIB);
        if (uniquePercent < 0 || uniquePercent > PageMix.MAX_UNIQUE_PERCENT) {
            throw CommandException.badInput("--unique-percent " + uniquePercent + ": must be 0 to "
                    + PageMix.MAX_UNIQUE_PERCENT + " (25% are zeroed and 5% written after boot)");
        }
        CommandException.requireRange("--budget-mib", budgetMib, 1, MAX_GUEST_MIB * (long) MAX_GUESTS);
        CommandException.requireRange("--ksm-timeout-seconds", ksmTimeoutSeconds, 1, 86_400);
        CommandException.requireRange("--rate-runs", rateRuns, 1, DensitySuite.Settings.MAX_RATE_RUNS);
        if (!Files.exists(image)) {
            throw CommandException.badInput("--image " + image + ": no such file or directory");
        }
        DemoMerge.checkFits(counts[counts.length - 1], guestMib, ((com.sun.management.OperatingSystemMXBean)
                ManagementFactory.getOperatingSystemMXBean()).getTotalMemorySize());     // (a) holds them all unmerged
        ReportFiles.checkDirectory(out);
        return counts;
    }

    /** The command as given, for the report: {@code samepage bench density ARGS}. */
    private String commandLine() {
        List<String> args = spec.commandLine().getParseResult().originalArgs();
        return "samepage " + String.join(" ", args);
    }
}
