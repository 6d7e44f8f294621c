package io.samepage.cli.bench;

import io.samepage.cli.CommandException;
import io.samepage.cli.HelpOption;
import io.samepage.wasm.WasmBench;
import io.samepage.wasm.WasmBenchReport;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** {@code samepage bench wasm}: its options and output; the measuring is {@link WasmBench}'s (wasm module). */
@Command(name = "wasm", sortOptions = false, description = {"N instances of one WebAssembly module (Chicory) with "
        + "MiBs of data segments and a memory-heavy workload, on ByteArrayMemory and on SamepageMemory: host memory, "
        + "instantiation of the first and later instances, the workload's time with the scanner running. Writes "
        + "wasm.json, wasm.md and wasm.png under --out and prints the Markdown (or the JSON).", ""},
        footer = {"", "Large N needs heap for ByteArrayMemory: SAMEPAGE_JAVA_OPTS=-Xmx...", "Exit codes: 0 success "
                + "(the output says which must-shows were met); 1 failure while working; 2 bad usage or bad input."})
public final class WasmCommand implements Callable<Integer> {
    @CommandLine.Spec
    private CommandLine.Model.CommandSpec spec;
    @CommandLine.Mixin
    private HelpOption help;
    @Option(names = "--instances", defaultValue = "1000", description = "Instances per memory. Default: ${DEFAULT-VALUE}.")
    private int instances;
    @Option(names = "--data-mib", defaultValue = "4", description = "Data segment MiB, 1 to 1024. Default: ${DEFAULT-VALUE}.")
    private int dataMib;
    @Option(names = "--cache-pages", defaultValue = "64", description = "Cached 4 KiB pages per memory. Default: ${DEFAULT-VALUE}.")
    private int cachePages;
    @Option(names = "--json", description = "Print wasm.json instead of the Markdown.") private boolean json;
    @Option(names = "--out", defaultValue = "target/wasm", description = "Report directory. Default: ${DEFAULT-VALUE}.") private Path out;

    @Override
    public Integer call() {
        WasmBench.Settings settings = new WasmBench.Settings(instances, dataMib, WasmBench.Settings.DEFAULT_WORDS,
                cachePages, 1, WasmBench.Settings.DEFAULT_PAGES_TO_SCAN, WasmBench.Settings.DEFAULT_SLEEP_MILLIS);
        try {
            settings.validate();
        } catch (IllegalArgumentException e) {
            throw CommandException.badInput(e.getMessage());
        }
        io.samepage.density.ReportFiles.checkDirectory(out);      // before the work, not after it
        WasmBenchReport report = new WasmBenchReport(WasmBench.run(settings, step -> spec.commandLine().getErr()
                .println("samepage bench wasm: " + step)), "samepage " + String.join(" ", spec.commandLine().getParseResult().originalArgs()));
        io.samepage.density.ReportFiles.write(out, report.files());
        spec.commandLine().getOut().print(json ? report.json() : report.markdown());
        return 0;
    }
}
