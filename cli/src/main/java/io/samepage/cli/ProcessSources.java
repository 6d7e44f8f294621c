package io.samepage.cli;

import io.samepage.host.ProcessScanException;
import io.samepage.host.QemuGuest;
import io.samepage.host.QemuGuests;
import java.io.PrintWriter;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

/**
 * Opens the live sources of {@code samepage scan}, {@code --pid} and {@code --qemu}, all before any is
 * loaded: a bad pid costs nothing and prints nothing on stdout. On failure every source opened so far
 * is closed again.
 */
final class ProcessSources {

    private ProcessSources() {
    }

    /**
     * @param pids the {@code --pid} values, in order
     * @param qemu whether {@code --qemu} was given
     * @param err  where a QEMU guest whose RAM was not found is reported (it is skipped)
     * @throws CommandException exit 2 for a pid given twice, a process that cannot be read, or
     *                          {@code --qemu} finding nothing to scan
     */
    static List<ProcessSource> open(List<Integer> pids, boolean qemu, PrintWriter err) {
        Set<Integer> seen = new HashSet<>();
        for (int pid : pids) {
            if (!seen.add(pid)) {
                throw CommandException.badInput("pid " + pid + ": given more than once (a guest's name must be unique)");
            }
        }
        List<ProcessSource> opened = new ArrayList<>();
        try {
            for (int pid : pids) {
                opened.add(ProcessSource.forPid(pid));
            }
            if (qemu) {
                openQemuGuests(seen, opened, err);
            }
            return opened;
        } catch (RuntimeException e) {
            closeAll(opened);
            throw ProcessSource.mapped(e);
        }
    }

    private static void openQemuGuests(Set<Integer> pids, List<ProcessSource> opened, PrintWriter err) {
        List<QemuGuest> guests = QemuGuests.discover();
        if (guests.isEmpty()) {
            throw CommandException.badInput("--qemu: no running QEMU process (qemu-system-* or qemu-kvm) was found");
        }
        int found = 0;
        for (QemuGuest guest : guests) {
            if (pids.contains(guest.pid())) {
                throw CommandException.badInput("pid " + guest.pid() + ": given by --pid and found by --qemu; give one "
                        + "or the other (its guest RAM would be counted twice)");
            }
            if (guest.ram() == null) {
                err.println("samepage scan: pid " + guest.pid() + " (" + guest.commandLine().binary()
                        + "): guest RAM not found, skipped: " + guest.problem());
                continue;
            }
            try {
                opened.add(ProcessSource.forQemu(guest));
                found++;
            } catch (ProcessScanException e) {
                if (e.kind() != ProcessScanException.Kind.NO_SUCH_PROCESS && e.kind() != ProcessScanException.Kind.EXITED) {
                    throw e;
                }
                err.println("samepage scan: " + e.getMessage() + "; skipped (it exited after it was found)");
            }
        }
        if (found == 0) {
            throw CommandException.badInput("--qemu: found " + guests.size() + " QEMU process"
                    + (guests.size() == 1 ? "" : "es") + " but the RAM of none could be read");
        }
    }

    static void closeAll(List<ProcessSource> sources) {
        for (ProcessSource source : sources) {
            source.close();
        }
    }
}
