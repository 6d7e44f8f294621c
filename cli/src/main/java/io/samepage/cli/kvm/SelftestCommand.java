package io.samepage.cli.kvm;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import io.samepage.cli.HelpOption;
import io.samepage.cli.SamepageCommand;
import io.samepage.core.DedupException;
import io.samepage.kvm.Kvm;
import io.samepage.kvm.KvmException;
import io.samepage.kvm.KvmSelftest;
import io.samepage.kvm.KvmSelftestReport;
import java.io.PrintWriter;
import java.io.UncheckedIOException;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/**
 * {@code samepage kvm selftest}: {@link KvmSelftest} end to end, printed as a table or as JSON, with an
 * exit code a script can test: 0 every guest saw its own bytes; {@value SamepageCommand#EXIT_WRONG_BYTE} some byte was
 * wrong; {@value SamepageCommand#EXIT_NO_KVM} no usable KVM here.
 */
@Command(
        name = "selftest",
        sortOptions = false,
        description = {
            "Runs N KVM guests with identical memory (16 MiB each: one differing page, a small 16-bit program, "
                    + "the rest the same content in every guest) on mapped guest memory: each guest page is a "
                    + "shared mapping of a memfd frame. The engine merges them (merged pages are mapped "
                    + "read-only onto one frame; freed frames are punched out of the memfd). Each guest then "
                    + "writes its id to four merged pages: every such write exits to this process, which breaks "
                    + "sharing (a private copy, mapped writable), applies the write and resumes the guest. The "
                    + "guest reads the bytes back to a serial port, and every byte of every guest's memory is "
                    + "compared with what it must hold.",
            "",
            "Prints the host frames in use, the memfd's allocated memory and this process's RssShmem before "
                    + "merging, after merging and after the writes; the guests' kernel mappings after merging; "
                    + "the copy-on-write exits handled; the pages a full scan rehashed with the dirty log "
                    + "(idle, and after the writes); and whether every guest saw its own bytes. Needs /dev/kvm "
                    + "(root, or the group that owns it).",
            "",
        },
        footer = {
            "",
            "Exit codes: 0 every guest saw its own bytes; 1 failure while working (KVM or the kernel refused a "
                    + "call, the mapping budget); 2 bad usage; " + SamepageCommand.EXIT_NO_KVM + " no usable KVM "
                    + "here (no /dev/kvm, no permission, no VM), nothing was run; " + SamepageCommand.EXIT_WRONG_BYTE
                    + " a guest read a byte it did not write, or lost one it wrote.",
        })
final class SelftestCommand implements Callable<Integer> {

    private static final int MAX_GUESTS = 32;
    private static final ObjectMapper JSON = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);

    @CommandLine.Spec
    private CommandLine.Model.CommandSpec spec;

    @Mixin
    private HelpOption help;

    @Option(names = "--guests", paramLabel = "N", description = "Guests to run, 2 to " + MAX_GUESTS + ". Default: 4.")
    private int guests = 4;

    @Option(names = "--json", description = "Print one JSON object with snake_case keys instead of the table.")
    private boolean json;

    @Override
    public Integer call() {
        PrintWriter out = spec.commandLine().getOut();
        PrintWriter err = spec.commandLine().getErr();
        if (guests < 2 || guests > MAX_GUESTS) {
            err.println("samepage kvm selftest: --guests must be 2 to " + MAX_GUESTS + " (sharing needs two), not "
                    + guests);
            return SamepageCommand.EXIT_USAGE;
        }
        String unavailable = Kvm.unavailableReason();
        if (unavailable != null) {
            err.println("samepage kvm selftest: no usable KVM here: " + unavailable);
            return SamepageCommand.EXIT_NO_KVM;
        }
        KvmSelftest.Report report;
        try {
            report = KvmSelftest.run(guests);
        } catch (KvmException e) {
            err.println("samepage kvm selftest: " + e.getMessage());
            return e.kind() == KvmException.Kind.UNAVAILABLE ? SamepageCommand.EXIT_NO_KVM : SamepageCommand.EXIT_FAILURE;
        } catch (DedupException | IllegalStateException e) {
            err.println("samepage kvm selftest: " + e.getMessage());
            return SamepageCommand.EXIT_FAILURE;
        }
        out.print(json ? json(report) : KvmSelftestReport.text(report));
        out.flush();
        if (report.wrongBytes() > 0) {
            err.println("samepage kvm selftest: " + report.wrongBytes() + " wrong bytes: a guest did not see its own "
                    + "bytes");
            return SamepageCommand.EXIT_WRONG_BYTE;
        }
        return 0;
    }

    static String json(KvmSelftest.Report r) {
        try {
            return JSON.writeValueAsString(KvmSelftestReport.fields(r)) + System.lineSeparator();
        } catch (JsonProcessingException e) {
            throw new UncheckedIOException(e);
        }
    }
}
