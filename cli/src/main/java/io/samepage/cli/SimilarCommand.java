package io.samepage.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.samepage.daemon.IoErrors;
import io.samepage.host.GuestSketch;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/** {@code samepage similar}: pages guests would share if placed together, from their sketches. */
@Command(name = "similar", sortOptions = false,
        description = {"Estimates, for every pair of guests, the distinct non-zero pages they hold in common: "
                + "what a host running both would keep once instead of twice. Reads the sketches that "
                + "'samepage scan --json' writes for each guest, from one host or several (bottom-k of the "
                + "guests' page hashes; the same page hashes alike on every host), never the guests' memory.", ""},
        footer = {"", "Exit codes: 0 success; 1 output that cannot be written; 2 a FILE that is missing, "
                + "given twice, unreadable, not JSON, or holds no guest with a sketch, or sketches of two page hashes."})
final class SimilarCommand implements Callable<Integer> {

    private static final ObjectMapper JSON = new ObjectMapper();

    private record Named(String name, GuestSketch sketch) {
    }

    @CommandLine.Spec
    private CommandLine.Model.CommandSpec spec;

    @Mixin
    private HelpOption help;

    @Option(names = "--json", description = "Print one JSON object: a 'pairs' array with snake_case keys.")
    private boolean json;

    @Parameters(paramLabel = "FILE", arity = "1..*", description = "Output of 'samepage scan --json'.")
    private List<Path> files;

    @Override
    public Integer call() {
        List<Named> guests = new ArrayList<>();
        java.util.Set<Path> seen = new java.util.HashSet<>();
        for (Path file : files) {
            if (!seen.add(file.toAbsolutePath().normalize())) {
                throw CommandException.badInput(file + ": given more than once");
            }
            read(file, guests);
        }
        ObjectNode root = CounterReport.newObject();
        root.putArray("pairs");         // there even with one guest, as --help says
        TextTable table = new TextTable("guest_a", "guest_b", "shared_pages", "shared_mib");
        for (int a = 0; a < guests.size(); a++) {
            for (int b = a + 1; b < guests.size(); b++) {
                double shared = GuestSketch.sharedPages(guests.get(a).sketch(), guests.get(b).sketch());
                root.withArray("pairs").addObject().put("guest_a", guests.get(a).name())
                        .put("guest_b", guests.get(b).name()).put("shared_pages", Math.round(shared));
                table.row(guests.get(a).name(), guests.get(b).name(), Math.round(shared), shared * 4096 / CounterReport.MIB);
            }
        }
        spec.commandLine().getOut().print(json ? CounterReport.render(root) : table.render());
        return 0;
    }

    /** Adds every guest of {@code file} with a sketch, named {@code FILE:NAME}, to {@code guests}; one page hash for all. */
    private static void read(Path file, List<Named> guests) {
        InputFiles.refuseIfNotRegular(file);
        int before = guests.size();
        try (java.io.InputStream in = java.nio.file.Files.newInputStream(file)) {
            for (JsonNode guest : JSON.readTree(in).path("guests")) {
                if (guest.path("sketch").isObject()) {
                    guests.add(new Named(file + ":" + guest.path("name").asText(),
                            GuestSketch.fromFields(JSON.convertValue(guest.get("sketch"), Map.class))));
                    GuestSketch.requireSameHash(guests.getFirst().sketch(), guests.getLast().sketch());
                }
            }
        } catch (com.fasterxml.jackson.core.JsonProcessingException | java.io.CharConversionException e) {
            // CharConversionException: bytes Jackson took for UTF-16 or UTF-32 (by the first four) that are not.
            throw CommandException.badInput(file + ": not JSON written by 'samepage scan --json'");
        } catch (IOException e) {
            String reason = IoErrors.reason(e);
            throw CommandException.badInput(e instanceof java.nio.file.FileSystemException ? reason
                    : file + ": " + reason);
        } catch (IllegalArgumentException e) {
            throw CommandException.badInput(file + ": " + e.getMessage());
        }
        if (guests.size() == before) {
            throw CommandException.badInput(file + ": no guest with a sketch (write it with 'samepage scan --json')");
        }
    }
}
