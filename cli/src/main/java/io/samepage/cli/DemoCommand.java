package io.samepage.cli;

import com.fasterxml.jackson.databind.node.ObjectNode;
import io.samepage.density.DemoMerge;
import io.samepage.density.DemoMerge.Stage;
import io.samepage.density.ImageBoot;
import io.samepage.density.PageMix;
import io.samepage.hashing.Pages;
import java.lang.management.ManagementFactory;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;
import java.util.function.Function;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/**
 * {@code samepage demo}: Samepage's main job on an embedded workload, in a few seconds. This class holds
 * the options, their checks and the output (the boot's through {@link ImageBootReport}); the density
 * module runs the two parts and documents them: the boot from one image without then with the pre-load
 * index ({@link ImageBoot}), then the merge of guests holding the demo's page mix and their writes after
 * it ({@link DemoMerge}).
 */
@Command(
        name = "demo",
        sortOptions = false,
        description = {
            "Boot: N guests load one image (--image; by default the JDK this command runs on), first "
                    + "without the pre-load index, each reading every block into its own memory, then with it: "
                    + "a zero block maps the zero frame, a block whose content (SHA-256) is already resident "
                    + "maps that frame copy-on-write, and only the other blocks are read, each checked against "
                    + "its digest. Prints each guest's blocks read, mapped and zero and its load time, and the "
                    + "host frames in use after all N guests, and checks that every guest reads back the image's "
                    + "bytes at every " + ImageBoot.SAMPLE_EVERY_BLOCKS + "th block.",
            "",
            "Merge: creates N guests that run the same operating system in one merge domain, merges their "
                    + "identical pages (full scans until two in a row change nothing, use_zero_pages on), "
                    + "writes to some merged pages (copy-on-write), checks that every guest reads back "
                    + "exactly what it wrote, and prints host memory and the KSM counters before merging, "
                    + "after merging and after the writes.",
            "",
        },
        footer = {
            "",
            "Page mix of each guest, generated from a fixed seed so every run prints the same counters:",
            "  " + PageMix.DEFAULT_UNCHANGED_IMAGE_PERCENT
                    + "%% OS image: identical in every guest (kernel, libraries, files)",
            "  " + PageMix.ZERO_PERCENT + "%% zeroed: written with zeros by the guest",
            "  " + PageMix.DEFAULT_UNIQUE_PERCENT + "%% unique: the guest's own data",
            "  " + PageMix.WRITTEN_AFTER_BOOT_PERCENT
                    + "%% written after boot: OS image pages the guest has changed",
            "Each guest places its pages in its own order; memory a guest never touched is left out, as "
                    + "it costs no frame, merged or not.",
            "",
            "Why: measurements of virtual machines that run the same OS (Waldspurger, VMware ESX, OSDI "
                    + "2002; Gupta et al., Difference Engine, OSDI 2008; Wood et al., Memory Buddies, VEE 2009) "
                    + "report large shares of identical pages between them; guests also hold many zeroed pages "
                    + "(Windows, for one, zeroes free pages in the background). These percentages are of that "
                    + "order of magnitude, chosen for the demo; they are not measurements, and real guests "
                    + "vary widely.",
            "",
            "Exit codes: 0 success; 1 failure while working (a guest read back other bytes than it "
                    + "wrote or than the image holds, an image block that no longer matches its digest, the "
                    + "frame pool exhausted, an --index file that could not be written: a full disk); 2 bad usage or bad input (a value out of range, guests larger "
                    + "than this host's memory, a missing or empty image, an --index that is corrupt, "
                    + "foreign or stale), with one line on stderr naming it.",
        })
final class DemoCommand implements Callable<Integer> {

    @CommandLine.Spec
    private CommandLine.Model.CommandSpec spec;

    @Mixin
    private HelpOption help;

    @Option(names = "--guests", paramLabel = "N", defaultValue = "4",
            description = "Guests to create, at least 2: N boot from the image without the index, N with "
                    + "it, then N merge. Default: ${DEFAULT-VALUE}.")
    private int guestCount;

    @Option(names = "--guest-mib", paramLabel = "MIB", defaultValue = "64",
            description = "Size of each guest, in MiB, at least 1; the host needs about guests x "
                    + "guest-mib of memory before merging. Default: ${DEFAULT-VALUE}.")
    private int guestMib;

    @Option(names = "--image", paramLabel = "PATH", defaultValue = "${sys:java.home}",
            description = "The image the guests boot from: a raw disk image or any file, or a directory "
                    + "tree. Without the index the host holds a copy per guest, so it needs about N x its "
                    + "size of memory. Default: the JDK this command runs on, ${DEFAULT-VALUE}.")
    private String image;

    @Option(names = "--index", paramLabel = "FILE",
            description = "Use an index file of the image: opened if it exists, and refused if the image changed "
                    + "since it was built (size, files, a file's modification or change time or inode: use --rebuild); "
                    + "built and written atomically if it does not exist. Default: none, the index is built in memory "
                    + "for this run.")
    private String indexFile;

    @Option(names = "--rebuild",
            description = "With --index: build the index from the image again and rewrite FILE, even if it "
                    + "exists and is current. Default: off.")
    private boolean rebuild;

    @Option(names = "--json", description = "Print one JSON object instead of tables: the boot under "
            + "\"image\", then the merge's keys.")
    private boolean json;

    @Override
    public Integer call() {
        if (guestCount < 2) {
            throw CommandException.badInput("--guests " + guestCount
                    + ": at least 2 guests are needed to share pages");
        }
        if (guestMib < 1) {
            throw CommandException.badInput("--guest-mib " + guestMib + ": must be at least 1");
        }
        if (rebuild && indexFile == null) {
            throw CommandException.badInput("--rebuild: rebuilds the --index FILE, and no --index was given");
        }
        long hostBytes = hostMemoryBytes();
        DemoMerge.checkFits(guestCount, guestMib, hostBytes);
        ImageBoot.Result boot = ImageBoot.run(new ImageBoot.Settings(IndexFiles.path(image),
                indexFile == null ? null : IndexFiles.path(indexFile), rebuild, guestCount, hostBytes));
        DemoMerge.Result merge = DemoMerge.run(guestCount, guestMib);
        String report = json ? json(boot, merge) : ImageBootReport.text(boot) + text(merge);
        spec.commandLine().getOut().print(report);
        return 0;
    }

    /** Physical memory of this host, or of the container the JVM runs in. */
    private static long hostMemoryBytes() {
        return ((com.sun.management.OperatingSystemMXBean) ManagementFactory.getOperatingSystemMXBean())
                .getTotalMemorySize();
    }

    private static String json(ImageBoot.Result boot, DemoMerge.Result merge) {
        ObjectNode root = CounterReport.newObject();
        root.put("guest_count", merge.guests());
        root.set("image", ImageBootReport.json(boot));
        root.put("guest_mib", merge.guestMib());
        root.put("seed", merge.seed());
        root.putObject("page_mix_percent")
                .put("os_image", PageMix.DEFAULT_UNCHANGED_IMAGE_PERCENT)
                .put("zeroed", PageMix.ZERO_PERCENT)
                .put("unique", PageMix.DEFAULT_UNIQUE_PERCENT)
                .put("written_after_boot", PageMix.WRITTEN_AFTER_BOOT_PERCENT);
        root.put("full_scans_to_settle", merge.fullScans());
        root.put("pages_written_after_merge", 2L * merge.writesAfterMerge());
        root.put("pages_verified", merge.pagesVerified());
        long framesBefore = merge.stages().getFirst().framesInUse();
        for (Stage stage : merge.stages()) {
            // The stage's name as a JSON key: before_merging, ...
            ObjectNode node = root.putObject(stage.name().replace(' ', '_').replace('-', '_'));
            node.put("guest_bytes", stage.counters().pagesTotal() * Pages.PAGE_SIZE);
            node.put("host_frames_in_use", stage.framesInUse());
            node.put("host_frame_bytes", stage.frameBytes());
            node.put("saved_bytes", (framesBefore - stage.framesInUse()) * Pages.PAGE_SIZE);
            node.setAll(CounterReport.toJson(stage.counters(), stage.guests()));
        }
        return CounterReport.render(root);
    }

    private static String text(DemoMerge.Result merge) {
        List<Stage> stages = merge.stages();
        StringBuilder out = new StringBuilder();
        out.append(String.format(Locale.ROOT, "Merge: %d guests of %d MiB in one merge domain, seed 0x%x. Page mix "
                        + "of each guest (pages):%n  %d OS image (identical in every guest), %d zeroed, %d unique, "
                        + "%d written after boot.%n",
                merge.guests(), merge.guestMib(), merge.seed(), merge.unchangedImagePages(), merge.zeroPages(),
                merge.uniquePages(), merge.writtenAfterBootPages()));
        out.append(String.format(Locale.ROOT, "Merged in %d full scans (use_zero_pages=1, smart_scan=0). Then "
                        + "vm-1 wrote to %d of its shared OS image pages and vm-2 to %d of its zero pages.%n",
                merge.fullScans(), merge.writesAfterMerge(), merge.writesAfterMerge()));
        out.append(String.format(Locale.ROOT, "After merging and again after the writes, every guest read back "
                + "exactly what it wrote (%d page reads compared).%n%n", merge.pagesVerified()));
        TextTable table = new TextTable("", stages.get(0).name(), stages.get(1).name(), stages.get(2).name());
        long framesBefore = stages.getFirst().framesInUse();
        addRow(table, "guest_mib", stages, s -> s.counters().pagesTotal() * Pages.PAGE_SIZE / CounterReport.MIB);
        addRow(table, "host_frames_mib", stages, s -> s.frameBytes() / CounterReport.MIB);
        addRow(table, "saved_mib", stages, s -> (framesBefore - s.framesInUse()) * Pages.PAGE_SIZE / CounterReport.MIB);
        addRow(table, "host_frames_in_use", stages, Stage::framesInUse);
        for (String name : CounterReport.engineCounters(stages.getFirst().counters()).keySet()) {
            addRow(table, name, stages, s -> CounterReport.engineCounters(s.counters()).get(name));
        }
        out.append(table.render()).append('\n');
        out.append("Per guest, after copy-on-write:\n");
        out.append(CounterReport.guestTable(stages.get(2).guests()));
        return out.toString();
    }

    /** One row: {@code name}, then {@code value} of each stage. */
    private static void addRow(TextTable table, String name, List<Stage> stages, Function<Stage, Number> value) {
        Object[] cells = new Object[stages.size() + 1];
        cells[0] = name;
        for (int i = 0; i < stages.size(); i++) {
            cells[i + 1] = value.apply(stages.get(i));
        }
        table.row(cells);
    }
}
