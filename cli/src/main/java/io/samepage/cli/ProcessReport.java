package io.samepage.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.samepage.daemon.ProcessSource;
import io.samepage.host.KsmStat;
import io.samepage.host.QemuGuest;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.OptionalLong;

/**
 * What {@code samepage scan} prints about live sources beside the engine's counters: per process (or
 * QEMU guest) the pages not read and why, whether the process exited while it was read, and what kernel
 * KSM achieves for it now ({@code /proc/PID/ksm_stat}), in KSM's names.
 */
final class ProcessReport {

    private static final String[] KERNEL_KSM = {"ksm_rmap_items", "ksm_zero_pages", "ksm_merging_pages",
        "ksm_process_profit"};

    private ProcessReport() {
    }

    /** Adds each live source's fields to its entry of the {@code guests} array of {@code root}. */
    static void addToJson(ObjectNode root, List<ProcessSource.Load> loads) {
        Map<String, ProcessSource.Load> byName = new HashMap<>();
        for (ProcessSource.Load load : loads) {
            byName.put(load.source().name(), load);
        }
        for (JsonNode node : root.get("guests")) {
            ProcessSource.Load load = byName.get(node.get("name").asText());
            if (load == null) {
                continue;
            }
            ObjectNode guest = (ObjectNode) node;
            guest.put("pid", load.source().pid());
            guest.put("pages_resident", load.pagesResident());
            guest.put("pages_not_resident", load.pagesNotResident());
            guest.put("pages_file_backed", load.pagesFileBacked());
            guest.put("partial", load.partial());
            KsmStat ksm = load.kernelKsm();
            if (ksm.present()) {
                ObjectNode kernel = guest.putObject("kernel_ksm");
                for (String name : KERNEL_KSM) {
                    OptionalLong value = ksm.number(name);
                    if (value.isPresent()) {
                        kernel.put(name, value.getAsLong());
                    } else {
                        kernel.putNull(name);
                    }
                }
            } else {
                guest.putNull("kernel_ksm");
                guest.put("kernel_ksm_absent", ksm.absentReason().orElse("absent"));
            }
            QemuGuest qemu = load.source().qemu();
            if (qemu != null) {
                ObjectNode q = guest.putObject("qemu");
                if (qemu.name() == null) {
                    q.putNull("name");
                } else {
                    q.put("name", qemu.name());
                }
                q.put("ram_bytes", qemu.commandLine().ramBytes());
                q.put("ram_mapping", qemu.ram().toString());
                q.put("found_by", qemu.foundBy().name().toLowerCase(Locale.ROOT));
            }
        }
    }

    /** The live sources' table, the kernel's table and notes, after the engine's report. */
    static String text(List<ProcessSource.Load> loads) {
        long resident = 0;
        long notResident = 0;
        long fileBacked = 0;
        TextTable pages = new TextTable("process", "pid", "pages_resident", "pages_not_resident", "pages_file_backed",
                "partial");
        TextTable kernel = new TextTable("process", KERNEL_KSM[0], KERNEL_KSM[1], KERNEL_KSM[2], KERNEL_KSM[3]);
        StringBuilder notes = new StringBuilder();
        for (ProcessSource.Load load : loads) {
            ProcessSource source = load.source();
            resident += load.pagesResident();
            notResident += load.pagesNotResident();
            fileBacked += load.pagesFileBacked();
            pages.row(source.name(), source.pid(), load.pagesResident(), load.pagesNotResident(),
                    load.pagesFileBacked(), load.partial() ? "yes" : "no");
            KsmStat ksm = load.kernelKsm();
            Object[] row = new Object[KERNEL_KSM.length + 1];
            row[0] = source.name();
            for (int i = 0; i < KERNEL_KSM.length; i++) {
                OptionalLong value = ksm.number(KERNEL_KSM[i]);
                row[i + 1] = value.isPresent() ? (Object) value.getAsLong() : "-";
            }
            kernel.row(row);
            if (!ksm.present()) {
                notes.append(source.name()).append(": no kernel KSM figures: ")
                        .append(ksm.absentReason().orElse("absent")).append('\n');
            }
            if (load.partial()) {
                notes.append(source.name()).append(": exited while it was read; its counters cover the pages read "
                        + "before (partial)\n");
            }
            QemuGuest qemu = source.qemu();
            if (qemu != null) {
                notes.append(String.format(Locale.ROOT, "%s: %.2f MiB of RAM in mapping %s, found by %s%n",
                        source.name(), qemu.commandLine().ramBytes() / CounterReport.MIB, qemu.ram(),
                        qemu.foundBy().name().toLowerCase(Locale.ROOT)));
            }
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
