package io.samepage.cli.kvm;

import io.samepage.cli.HelpOption;
import io.samepage.kvm.KvmSelftest;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.samepage.cli.SamepageCommand;
import io.samepage.core.DedupException;
import io.samepage.kvm.Kvm;
import io.samepage.kvm.KvmException;
import java.io.PrintWriter;
import java.io.UncheckedIOException;
import java.util.Locale;
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
    private static final double MIB = 1 << 20;
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
        out.print(json ? json(report) : text(report));
        out.flush();
        if (report.wrongBytes() > 0) {
            err.println("samepage kvm selftest: " + report.wrongBytes() + " wrong bytes: a guest did not see its own "
                    + "bytes");
            return SamepageCommand.EXIT_WRONG_BYTE;
        }
        return 0;
    }

    static String text(KvmSelftest.Report r) {
        StringBuilder s = new StringBuilder();
        s.append(String.format(Locale.ROOT, "KVM self-test: %d guests of %d MiB with identical memory, one merge "
                + "domain, dirty log on%n%n", r.guests(), r.guestBytes() >> 20));
        s.append(String.format(Locale.ROOT, "%-22s %18s %18s %18s%n", "", "before merging", "after merging",
                "after the writes"));
        s.append(String.format(Locale.ROOT, "%-22s %18d %18d %18d%n", "host frames (engine)",
                r.beforeMerging().hostFrames(), r.afterMerging().hostFrames(), r.afterWrites().hostFrames()));
        s.append(String.format(Locale.ROOT, "%-22s %18.1f %18.1f %18.1f%n", "memfd allocated (MiB)",
                r.beforeMerging().memfdAllocatedBytes() / MIB, r.afterMerging().memfdAllocatedBytes() / MIB,
                r.afterWrites().memfdAllocatedBytes() / MIB));
        s.append(String.format(Locale.ROOT, "%-22s %18.1f %18.1f %18.1f%n%n", "RssShmem (MiB)",
                r.beforeMerging().rssShmemBytes() / MIB, r.afterMerging().rssShmemBytes() / MIB,
                r.afterWrites().rssShmemBytes() / MIB));
        s.append(String.format(Locale.ROOT, "pages_sharing after merging: %d%n", r.pagesSharing()));
        s.append(String.format(Locale.ROOT, "guest kernel mappings after merging: %d (%.0f per GiB of guest memory)%n",
                r.guestMappings(), r.mappingsPerGib()));
        s.append(String.format(Locale.ROOT, "copy-on-write exits handled: %d%n", r.copyOnWriteExits()));
        s.append(String.format(Locale.ROOT, "pages rehashed by a full scan (dirty log): %d idle, %d after the writes%n",
                r.pagesHashedIdle(), r.pagesHashedAfterWrites()));
        if (r.mergingStopped() != null) {
            s.append("merging stopped: ").append(r.mergingStopped()).append('\n');
        }
        for (KvmSelftest.GuestResult g : r.perGuest()) {
            s.append(String.format(Locale.ROOT, "  %s: %d copy-on-write exits, serial output %s (expected %s), "
                    + "%d wrong bytes%n", g.name(), g.copyOnWriteExits(), g.output(), g.expectedOutput(), g.wrongBytes()));
        }
        s.append(r.wrongBytes() == 0 ? "every guest saw its own bytes: yes\n"
                : "every guest saw its own bytes: NO, " + r.wrongBytes() + " wrong bytes\n");
        return s.toString();
    }

    static String json(KvmSelftest.Report r) {
        ObjectNode root = JSON.createObjectNode();
        root.put("guests", r.guests());
        root.put("guest_bytes", r.guestBytes());
        memory(root.putObject("before_merging"), r.beforeMerging());
        memory(root.putObject("after_merging"), r.afterMerging());
        memory(root.putObject("after_writes"), r.afterWrites());
        root.put("pages_sharing", r.pagesSharing());
        root.put("guest_mappings", r.guestMappings());
        root.put("guest_mappings_per_gib", Math.round(r.mappingsPerGib()));
        root.put("copy_on_write_exits", r.copyOnWriteExits());
        root.put("pages_hashed_idle_full_scan", r.pagesHashedIdle());
        root.put("pages_hashed_full_scan_after_writes", r.pagesHashedAfterWrites());
        root.put("merging_stopped", r.mergingStopped());
        root.put("wrong_bytes", r.wrongBytes());
        root.put("every_guest_saw_its_own_bytes", r.wrongBytes() == 0);
        ArrayNode perGuest = root.putArray("per_guest");
        for (KvmSelftest.GuestResult g : r.perGuest()) {
            ObjectNode node = perGuest.addObject();
            node.put("name", g.name());
            node.put("copy_on_write_exits", g.copyOnWriteExits());
            g.output().forEach(node.putArray("serial_output")::add);
            g.expectedOutput().forEach(node.putArray("expected_serial_output")::add);
            node.put("wrong_bytes", g.wrongBytes());
        }
        try {
            return JSON.writeValueAsString(root) + System.lineSeparator();
        } catch (JsonProcessingException e) {
            throw new UncheckedIOException(e);
        }
    }

    private static void memory(ObjectNode node, KvmSelftest.Memory m) {
        node.put("host_frames", m.hostFrames());
        node.put("memfd_allocated_bytes", m.memfdAllocatedBytes());
        node.put("rss_shmem_bytes", m.rssShmemBytes());
    }
}
