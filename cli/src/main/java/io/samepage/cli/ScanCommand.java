package io.samepage.cli;

import static io.samepage.daemon.Daemon.Context.MAX_POOL_MIB;

import com.fasterxml.jackson.databind.node.ObjectNode;
import io.samepage.core.DedupException;
import io.samepage.core.EngineContext;
import io.samepage.core.EngineCounters;
import io.samepage.core.GuestCounters;
import io.samepage.core.ScanKnobs;
import io.samepage.core.Scanner;
import io.samepage.daemon.OneLine;
import io.samepage.daemon.PoolSize;
import io.samepage.daemon.ProcessSource;
import io.samepage.daemon.ProcessSources;
import io.samepage.daemon.SourceEstimate;
import io.samepage.daemon.SourceFile;
import io.samepage.daemon.SourceScan;
import io.samepage.hashing.Pages;
import java.io.PrintWriter;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/**
 * {@code samepage scan}: how much would KSM-style merging save across these memory dumps?
 *
 * <p>Each source (a raw memory dump or a QEMU memory-backend file) becomes one guest of the same size
 * in a fresh engine ({@link SourceFile} says how it is read). The scanner then runs full scans in this
 * thread, with {@code smart_scan} off so no page is skipped, until two in a row change nothing
 * ({@link Scanner#scanUntilStable}), and the command prints the engine's counters overall and per guest.
 *
 * <p>Every source is checked before any is loaded, so bad input costs nothing and prints nothing on
 * stdout. The sources' non-zero content is held in host memory while they load, before merging frees
 * the duplicates: scanning 8 GiB of dumps can take up to 8 GiB of RAM.
 *
 * <p>Host mode: {@code --pid} and {@code --qemu} add live sources, a process's memory or a QEMU
 * guest's RAM, read without disturbing them ({@link ProcessSource} says what is read); they combine
 * with files and each other. A scan with one is an estimate ({@link SourceEstimate}), no page kept.
 */
@Command(
        name = "scan",
        sortOptions = false,
        defaultValueProvider = ScanCommand.KnobDefaults.class,
        description = {
            "Loads each SOURCE (a raw memory dump or a QEMU memory-backend file) into a guest of the "
                    + "same size, merges identical 4 KiB pages with Linux KSM's rules until two full scans in a "
                    + "row change nothing (smart_scan off), and prints the KSM counters overall and per guest.",
            "",
            "All-zero 1 MiB chunks of a source are not loaded: they stay never-written guest memory, which "
                    + "costs no frame and is in no counter. Zero pages inside a chunk that holds data are "
                    + "loaded, as a guest that zeroed them holds them. The sources' other pages are held in "
                    + "host memory until merging frees the duplicates.",
            "",
            "Host mode: --pid and --qemu scan live memory, read-only (the processes are neither stopped nor "
                    + "written). A process is one guest: its private readable mappings end to end; only its "
                    + "resident anonymous pages are read, the pages KSM could merge. A QEMU guest is one guest: "
                    + "the mapping that holds its RAM, at the guest's offsets, every resident page read. A page "
                    + "that is not resident (never touched, swapped out, or mapping the kernel's zero page) "
                    + "costs the host nothing and is never read, as reading would fault it in: it is counted in "
                    + "pages_not_resident, never as a zero page or a saving. Files, --pid and --qemu combine "
                    + "freely; every source is opened and checked before any is loaded. Such a scan is \"estimated\": "
                    + "each source is read once into 128-bit page digests, keeping no page, in one merge domain; n "
                    + "pages of one content need ceil(n / max_page_sharing) frames; shared_contents counts the "
                    + "distinct contents two guests share. --domain-per-source and --pool-mib are for files alone.",
            "",
        },
        footer = {
            "",
            "Counters keep Linux KSM's names and meanings (/sys/kernel/mm/ksm, /proc/PID/ksm_stat); "
                    + "--json prints them as one object with a guests array.",
            "",
            "For each live source the guest entry adds pid, pages_resident (read), pages_not_resident, "
                    + "pages_file_backed (page cache or shared memory: already shared by the kernel, not merged "
                    + "by KSM, not read), partial (true if the process exited while it was read: the counters "
                    + "cover the pages before) and kernel_ksm: what kernel KSM achieves for the process now "
                    + "(ksm_rmap_items, ksm_zero_pages, ksm_merging_pages, ksm_process_profit), or null with "
                    + "kernel_ksm_absent saying why where /proc/PID/ksm_stat is missing (before Linux 6.1). A "
                    + "QEMU guest adds qemu: its name, ram_bytes, the ram_mapping scanned and the rule that "
                    + "found it (found_by).",
            "",
            "Reading another user's process needs root or CAP_SYS_PTRACE (and kernel.yama.ptrace_scope may "
                    + "refuse processes that are not descendants). Where frame numbers are hidden (without "
                    + "CAP_SYS_ADMIN) a page mapping the kernel's zero page cannot be told apart and is read as "
                    + "a resident page of zeros.",
            "",
            "Exit codes: 0 success; 1 failure while working (a read error, a frame pool too small); "
                    + "2 bad usage or bad input (a missing, unreadable or empty source, a directory, a length "
                    + "that is not a multiple of 4096; no such process, permission denied, a process that has "
                    + "exited; --qemu finding no guest), with one line on stderr naming the source.",
        })
final class ScanCommand implements Callable<Integer> {

    @CommandLine.Spec
    private CommandLine.Model.CommandSpec spec;

    @Mixin
    private HelpOption help;

    @Option(names = "--json", description = "Print one JSON object instead of tables.")
    private boolean json;

    @Option(names = "--max-page-sharing", paramLabel = "N",
            description = "max_page_sharing: guest pages that may map one shared frame before another "
                    + "copy starts a chain; at least 2. Default: ${DEFAULT-VALUE}.")
    private int maxPageSharing;

    @Option(names = "--use-zero-pages",
            description = "use_zero_pages: map all-zero pages to the zero frame (ksm_zero_pages) instead "
                    + "of merging them with each other. Default: off.")
    private boolean useZeroPages;

    @Option(names = "--domain-per-source",
            description = "Put each source in a merge domain of its own, so no page merges across "
                    + "sources. Default: all sources share one domain.")
    private boolean domainPerSource;

    @Option(names = "--pool-mib", paramLabel = "MIB",
            description = "Host memory for frames, in MiB, 1 to " + MAX_POOL_MIB + "; it must hold the sources' non-zero content "
                    + "before merging, and its frame metadata counts in metadata_bytes. Default: the "
                    + "sources' total size plus one 4 KiB zero frame per merge domain. Files alone: a scan "
                    + "with a live source uses no frames.")
    private Long poolMib;

    @Option(names = "--pid", paramLabel = "PID", split = ",",
            description = "Scan the memory of process PID, read-only; one guest named 'pid PID (command)'. "
                    + "Repeat it or separate pids with commas.")
    private List<Integer> pids = new ArrayList<>();

    @Option(names = "--qemu",
            description = "Scan the guest RAM of every running QEMU process (qemu-system-*, qemu-kvm), "
                    + "found from its -m and memory-backend options and /proc/PID/maps; one guest each, "
                    + "named 'pid PID (qemu guest NAME)'. A guest whose RAM is not found is skipped with "
                    + "a line on stderr.")
    private boolean qemu;

    @Parameters(paramLabel = "SOURCE", arity = "0..*",
            description = "A memory dump whose length is a positive multiple of 4096 bytes; one guest, "
                    + "named by the path as given. At least one SOURCE, --pid or --qemu.")
    private List<String> sources = new ArrayList<>();

    @Override
    public Integer call() {
        PrintWriter err = spec.commandLine().getErr();
        if (sources.isEmpty() && pids.isEmpty() && !qemu) {
            throw new CommandLine.ParameterException(spec.commandLine(),
                    "Missing required parameter: 'SOURCE' (or --pid, --qemu)");
        }
        List<SourceFile> files = checkSources();
        List<ProcessSource> processes = ProcessSources.open(pids, qemu, skipped -> {
            err.println("samepage scan: " + OneLine.of(skipped));
            err.flush();
        });
        try {
            String report = processes.isEmpty() ? scan(files, context(files)) : estimate(files, processes);
            spec.commandLine().getOut().print(report);
            spec.commandLine().getOut().flush();
        } finally {
            ProcessSources.closeAll(processes);
        }
        return 0;
    }

    /** Checks every source before any is loaded. */
    private List<SourceFile> checkSources() {
        Set<String> seen = new HashSet<>();
        List<SourceFile> files = new ArrayList<>();
        for (String source : sources) {
            if (!seen.add(source)) {
                throw CommandException.badInput(source + ": given more than once (a guest's name must be unique)");
            }
            files.add(SourceFile.check(source));
        }
        return files;
    }

    private EngineContext context(List<SourceFile> files) {
        long totalBytes = PoolSize.sourceBytes(files, List.of());
        if (poolMib != null && (poolMib < 1 || poolMib > MAX_POOL_MIB)) {
            throw CommandException.badInput("--pool-mib " + poolMib + ": must be 1 to " + MAX_POOL_MIB
                    + " (8 TiB less 1 MiB)");
        }
        long poolBytes = poolMib != null ? poolMib << 20 : PoolSize.defaultBytes(files, List.of(), domainPerSource);
        EngineContext context = new EngineContext().poolBytes(poolBytes);
        try {
            context.knobs().maxPageSharing(maxPageSharing).useZeroPages(useZeroPages).smartScan(false);
        } catch (DedupException e) {
            throw CommandException.badInput("--max-page-sharing " + maxPageSharing + ": " + e.getMessage());
        }
        try {
            return context.conclude();
        } catch (DedupException e) {
            throw CommandException.badInput((poolMib != null ? "--pool-mib " + poolMib
                    : "the sources' " + totalBytes + " bytes") + ": " + e.getMessage());
        }
    }

    /** Live sources: every source read once into digests, nothing merged ({@link SourceEstimate}). */
    private String estimate(List<SourceFile> files, List<ProcessSource> processes) {
        if (domainPerSource || poolMib != null) {
            throw CommandException.badInput((domainPerSource ? "--domain-per-source" : "--pool-mib " + poolMib)
                    + ": live sources are estimated in one merge domain, without frames; give it with files alone");
        }
        SourceEstimate.Result r = SourceEstimate.run(files, processes, maxPageSharing, useZeroPages);
        return json ? CounterReport.render(EstimateReport.json(r)) : EstimateReport.text(r);
    }

    private String scan(List<SourceFile> files, EngineContext context) {
        SourceScan.Result r;
        try {
            r = SourceScan.run(context, files, domainPerSource, e -> CommandException.failure(
                    e.getMessage() + (poolMib != null ? "; raise --pool-mib" : "")));
        } catch (DedupException e) {
            throw CommandException.failure(e.getMessage());
        }
        if (json) {
            ObjectNode root = CounterReport.toJson(r.counters(), r.guests());
            EstimateReport.addSketches(root, r.sketches());
            return CounterReport.render(root);
        }
        return text(r.counters(), r.guests(), r.domains(), r.fullScans(), r.pagesWritten());
    }

    private String text(EngineCounters c, List<GuestCounters> guests, int domains, int scans, long written) {
        StringBuilder out = new StringBuilder();
        double totalMib = (double) c.pagesTotal() * Pages.PAGE_SIZE / CounterReport.MIB;
        out.append(String.format(Locale.ROOT, "%d source%s, %d pages (%.2f MiB) in %d merge domain%s; "
                        + "%d pages in all-zero chunks not loaded.%n",
                guests.size(), guests.size() == 1 ? "" : "s", c.pagesTotal(), totalMib, domains,
                domains == 1 ? "" : "s", c.pagesTotal() - written));
        out.append(String.format(Locale.ROOT, "Merged in %d full scans (max_page_sharing=%d, use_zero_pages=%d, "
                + "smart_scan=0).%n%n", scans, maxPageSharing, useZeroPages ? 1 : 0));
        out.append(CounterReport.engineTable(c)).append('\n');
        out.append(String.format(Locale.ROOT, "saved: %.2f MiB of guest memory ((pages_sharing + ksm_zero_pages)"
                        + " x 4 KiB), %.2f MiB net of metadata (general_profit)%n%n",
                CounterReport.mergedBytes(c) / CounterReport.MIB, c.generalProfit() / CounterReport.MIB));
        out.append(CounterReport.guestTable(guests));
        return out.toString();
    }

    /** Shows the engine's own knob defaults in {@code --help}, and uses them. */
    static final class KnobDefaults implements CommandLine.IDefaultValueProvider {
        @Override
        public String defaultValue(CommandLine.Model.ArgSpec argSpec) {
            if (argSpec instanceof CommandLine.Model.OptionSpec option
                    && option.longestName().equals("--max-page-sharing")) {
                return String.valueOf(ScanKnobs.DEFAULT_MAX_PAGE_SHARING);
            }
            return null;
        }
    }
}
