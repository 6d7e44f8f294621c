package io.samepage.cli.bench;

import io.samepage.cli.CommandException;
import io.samepage.hashing.ContentDigest;
import io.samepage.image.ImageIndex;
import io.samepage.image.ImageIndexException;
import io.samepage.host.KernelKsm;
import java.io.IOException;
import java.io.PrintWriter;
import java.lang.management.ManagementFactory;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * {@code samepage bench density}: how many guests fit, measured beside kernel KSM and containers.
 *
 * <p>For each N of {@code --guests}, the same guest content ({@link GuestContent}) is held five ways:
 * (a) without deduplication and (b) merged by the engine's scanner after load ({@link EngineModes}),
 * (c) loaded through the image index then scanned ({@link EngineModes}), (d) by kernel KSM in a helper
 * process, at its full rate at every N and at its defaults at the largest N ({@link KsmMode}), and (e)
 * the container-equivalent model ({@link ContainerModel}). It writes {@code density.json},
 * {@code density.md} and {@code density.png} under {@code --out} ({@link DensityReport},
 * {@link DensityChart}) and prints the Markdown, which ends with each must-show and whether this run
 * met it. The must-shows are reported, not enforced: the exit code is 0 either way.
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
            "Host memory: (a) a frame per guest page; (b), (c) frames the guests hold x 4096 plus the engine's "
                    + "metadata; (d) guest bytes - (pages_sharing + ksm_zero_pages) x 4096, KSM's own metadata not "
                    + "counted; (e) one copy of the loaded image blocks + each guest's unique and written pages.",
            "Time to 99%%: from the start of scanning for (b); from the start of the index loads for (c), "
                    + "excluding the guests' own writes; from run=1 for (d). CPU-seconds: the engine's thread for "
                    + "(b) and (c); ksmd's utime + stime (/proc/PID/stat) for (d).",
            "Before the first N, (b) and (c) run once with one guest, unrecorded, so the JIT has compiled "
                    + "the engine before anything is timed.",
            "Fit: a line through the two largest N (per-guest growth and shared base), then (budget - base) / "
                    + "per-guest.",
            "",
            "Kernel KSM needs root and /sys/kernel/mm/ksm; elsewhere (d) is skipped with a note. It takes the lock "
                    + KsmMode.LOCK_FILE + ", sets use_zero_pages=1 and the rate, and always writes run=2 and "
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

    @Option(names = {"-h", "--help"}, usageHelp = true, description = "Show this help and exit.")
    private boolean help;

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

    @Option(names = "--unique-percent", paramLabel = "P", defaultValue = "" + GuestContent.DEFAULT_UNIQUE_PERCENT,
            description = "Pages unique to each guest, in percent, 0 to " + GuestContent.MAX_UNIQUE_PERCENT
                    + ". Default: ${DEFAULT-VALUE}.")
    private int uniquePercent;

    @Option(names = "--budget-mib", paramLabel = "MIB", defaultValue = "4096",
            description = "The host memory budget for the guests-that-fit figure, at least 1. Default: "
                    + "${DEFAULT-VALUE}.")
    private long budgetMib;

    @Option(names = "--seed", paramLabel = "SEED", defaultValue = "" + GuestContent.DEFAULT_SEED,
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

    @Option(names = "--no-ksm", description = "Skip mode (d): no helper process, no change to kernel KSM.")
    private boolean noKsm;

    @Option(names = "--json", description = "Print density.json instead of the Markdown.")
    private boolean json;

    @Option(names = "--out", paramLabel = "DIR", defaultValue = "target/density",
            description = "Directory for density.json, density.md and density.png; created if missing. "
                    + "Default: ${DEFAULT-VALUE}.")
    private Path out;

    static final int MAX_GUESTS = 1024;
    static final int MAX_GUEST_MIB = 1 << 20;

    /** Where KSM runs at its defaults. */
    enum KsmDefaults { largest, all, none }

    @Override
    public Integer call() {
        PrintWriter err = spec.commandLine().getErr();
        int[] counts = validate();
        long start = System.nanoTime();
        try (GuestContent content = new GuestContent(image, counts[counts.length - 1], guestMib, uniquePercent,
                seed)) {
            DensityResults results = new DensityResults(content, counts, budgetMib, ksmTimeoutSeconds);
            measure(results, counts, err);
            results.wallSeconds((System.nanoTime() - start) / 1e9);
            DensityReport report = new DensityReport(results, commandLine());
            String md = report.markdown();
            String js = report.json();
            write(results, md, js);
            spec.commandLine().getOut().print(json ? js : md);
            spec.commandLine().getOut().flush();
        }
        return 0;
    }

    private int[] validate() {
        int[] counts = Arrays.stream(guests).sorted().distinct().toArray();
        for (int n : counts) {
            if (n < 1 || n > MAX_GUESTS) {
                throw CommandException.badInput("--guests " + n + ": each guest count must be 1 to " + MAX_GUESTS);
            }
        }
        if (guestMib < 1 || guestMib > MAX_GUEST_MIB) {
            throw CommandException.badInput("--guest-mib " + guestMib + ": must be 1 to " + MAX_GUEST_MIB);
        }
        if (uniquePercent < 0 || uniquePercent > GuestContent.MAX_UNIQUE_PERCENT) {
            throw CommandException.badInput("--unique-percent " + uniquePercent + ": must be 0 to "
                    + GuestContent.MAX_UNIQUE_PERCENT + " (25% are zeroed and 5% written after boot)");
        }
        if (budgetMib < 1) {
            throw CommandException.badInput("--budget-mib " + budgetMib + ": must be at least 1");
        }
        if (ksmTimeoutSeconds < 1 || ksmTimeoutSeconds > 86_400) {
            throw CommandException.badInput("--ksm-timeout-seconds " + ksmTimeoutSeconds + ": must be 1 to 86400");
        }
        if (!Files.exists(image)) {
            throw CommandException.badInput("--image " + image + ": no such file or directory");
        }
        long needMib = (long) counts[counts.length - 1] * guestMib;
        long hostMib = ((com.sun.management.OperatingSystemMXBean) ManagementFactory.getOperatingSystemMXBean())
                .getTotalMemorySize() >> 20;
        if (needMib > hostMib) {
            throw CommandException.badInput("--guests " + counts[counts.length - 1] + " --guest-mib " + guestMib
                    + ": without deduplication the guests need " + needMib + " MiB; this host has " + hostMib + " MiB");
        }
        try {
            Files.createDirectories(out);
        } catch (IOException e) {
            throw CommandException.badInput("--out " + out + ": cannot create the directory: " + e.getMessage());
        }
        if (!Files.isWritable(out)) {
            throw CommandException.badInput("--out " + out + ": not writable");
        }
        return counts;
    }

    private void measure(DensityResults results, int[] counts, PrintWriter err) {
        GuestContent content = results.content();
        long buildStart = System.nanoTime();
        try (ImageIndex index = ImageIndex.build(image)) {
            results.indexBuildSeconds((System.nanoTime() - buildStart) / 1e9);
            results.distinctImagePages(distinctNonZero(index, content.imagePages()));
            progress(err, 1, "warm-up of (b) and (c), not recorded");
            EngineModes.postLoad(content, 1);
            EngineModes.preLoad(content, index, 1);
            for (int n : counts) {
                progress(err, n, "(a), (b)");
                EngineModes.postLoad(content, n).forEach(results::add);
                progress(err, n, "(c)");
                results.add(EngineModes.preLoad(content, index, n));
                results.add(ContainerModel.of(content, n));
            }
        } catch (ImageIndexException e) {
            throw CommandException.badInput("--image " + image + ": " + e.getMessage());
        }
        measureKsm(results, counts, err);
    }

    private void measureKsm(DensityResults results, int[] counts, PrintWriter err) {
        if (noKsm) {
            results.note(Mode.KSM_FULL_RATE, "skipped: --no-ksm");
            results.note(Mode.KSM_DEFAULTS, "skipped: --no-ksm");
            return;
        }
        KernelKsm kernel = KernelKsm.system();
        String unavailable = KsmMode.unavailableReason(kernel);
        if (unavailable != null) {
            results.note(Mode.KSM_FULL_RATE, "skipped: " + unavailable);
            results.note(Mode.KSM_DEFAULTS, "skipped: " + unavailable);
            return;
        }
        if (ksmDefaults == KsmDefaults.none) {
            results.note(Mode.KSM_DEFAULTS, "skipped: --ksm-defaults none");
        }
        try (KsmMode ksm = KsmMode.open(kernel)) {
            for (int n : counts) {
                progress(err, n, "(d) full rate");
                ModeResult full = ksm.run(results.content(), n, KsmMode.Rate.FULL, ksmTimeoutSeconds, 0);
                results.add(full);
                boolean defaults = ksmDefaults == KsmDefaults.all
                        || ksmDefaults == KsmDefaults.largest && n == counts[counts.length - 1];
                if (defaults) {
                    progress(err, n, "(d) KSM defaults, up to " + ksmTimeoutSeconds + " s");
                    results.add(ksm.run(results.content(), n, KsmMode.Rate.DEFAULTS, ksmTimeoutSeconds,
                            full.savedPages()));
                }
            }
        }
    }

    private static void progress(PrintWriter err, int n, String modes) {
        err.println("samepage bench density: N=" + n + ": " + modes);
        err.flush();
    }

    /** Distinct non-zero blocks among the image's first {@code blocks}, by SHA-256. */
    private static long distinctNonZero(ImageIndex index, long blocks) {
        Set<ByteBuffer> distinct = new HashSet<>();
        for (long b = 0; b < blocks; b++) {
            if (!index.isZero(b)) {
                byte[] digest = new byte[ContentDigest.LENGTH];
                index.digest(b, digest, 0);
                distinct.add(ByteBuffer.wrap(digest));
            }
        }
        return distinct.size();
    }

    private void write(DensityResults results, String md, String js) {
        try {
            Files.writeString(out.resolve("density.json"), js);
            Files.writeString(out.resolve("density.md"), md);
            DensityChart.write(results, out.resolve("density.png"));
        } catch (IOException e) {
            throw CommandException.failure("--out " + out + ": cannot write the report: " + e.getMessage());
        }
    }

    /** The command as given, for the report: {@code samepage bench density ARGS}. */
    private String commandLine() {
        List<String> args = spec.commandLine().getParseResult().originalArgs();
        return "samepage " + String.join(" ", args);
    }
}
