package io.samepage.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.samepage.daemon.ProcessSource;
import java.util.List;
import java.util.Locale;
import java.util.stream.Stream;

/**
 * What {@code samepage scan} prints about live sources beside the counters: per process (or QEMU guest)
 * the pages not read and why, whether the process exited while it was read, and what kernel KSM
 * achieves for it now ({@code /proc/PID/ksm_stat}), in KSM's names. The figures and notes are
 * {@link ProcessSource.Load}'s; this class lays them out.
 */
final class ProcessReport {

    private static final ObjectMapper JSON = new ObjectMapper();

    private ProcessReport() {
    }

    /** Adds each live source's fields to its entry of the {@code guests} array of {@code root}. */
    static void addToJson(ObjectNode root, List<ProcessSource.Load> loads) {
        for (JsonNode node : root.get("guests")) {
            for (ProcessSource.Load load : loads) {
                if (load.source().name().equals(node.get("name").asText())) {
                    ((ObjectNode) node).setAll((ObjectNode) JSON.valueToTree(load.fields()));
                }
            }
        }
    }

    /** The live sources' table, the kernel's table and notes, after the counters. */
    static String text(List<ProcessSource.Load> loads) {
        long resident = 0;
        long notResident = 0;
        long fileBacked = 0;
        TextTable pages = new TextTable("process", "pid", "pages_resident", "pages_not_resident", "pages_file_backed",
                "partial");
        TextTable kernel = new TextTable(Stream.concat(Stream.of("process"), ProcessSource.Load.KERNEL_KSM.stream())
                .toArray(String[]::new));
        StringBuilder notes = new StringBuilder();
        for (ProcessSource.Load load : loads) {
            resident += load.pagesResident();
            notResident += load.pagesNotResident();
            fileBacked += load.pagesFileBacked();
            pages.row(load.source().name(), load.source().pid(), load.pagesResident(), load.pagesNotResident(),
                    load.pagesFileBacked(), load.partial() ? "yes" : "no");
            kernel.row(Stream.concat(Stream.of(load.source().name()),
                    load.kernelKsmValues().values().stream().map(v -> v == null ? "-" : (Object) v)).toArray());
            load.notes().forEach(note -> notes.append(note).append('\n'));
        }
        return String.format(Locale.ROOT, "%nProcesses: %d pages resident and read; %d not resident (no RAM of "
                        + "their own: never touched, swapped out, or mapping the zero page), %d file-backed (page "
                        + "cache or shared memory), not read.%n%n", resident, notResident, fileBacked)
                + pages.render()
                + "\nWhat kernel KSM achieves for each process now (/proc/PID/ksm_stat):\n\n"
                + kernel.render()
                + (notes.isEmpty() ? "" : "\n" + notes);
    }
}
