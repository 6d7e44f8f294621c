package io.samepage.daemon;

import io.samepage.daemon.DaemonException.Kind;
import io.samepage.host.ProcessScanException;
import io.samepage.host.QemuGuest;
import io.samepage.host.QemuGuests;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.function.Consumer;

/**
 * Opens live sources, pids and every QEMU guest ({@code --pid} and {@code --qemu} of {@code samepage scan},
 * {@code source=pid:PID} and {@code source=qemu} of the daemon), all before any is loaded: a bad pid
 * costs nothing. On failure (an {@link OutOfMemoryError} too) every source opened so far is closed again.
 */
public final class ProcessSources {

    private ProcessSources() {
    }

    /**
     * @param pids    the pids, in order
     * @param qemu    whether every QEMU guest is a source too
     * @param skipped told, in one line, of each QEMU guest that is skipped (its RAM not found, or it exited)
     * @throws DaemonException {@link DaemonException.Kind#SOURCE} for a pid given twice, a process that cannot
     *                         be read, or {@code qemu} finding nothing to scan; {@link DaemonException.Kind#FAILED}
     *                         for an I/O failure
     */
    public static List<ProcessSource> open(List<Integer> pids, boolean qemu, Consumer<String> skipped) {
        Set<Integer> seen = new HashSet<>();
        for (int pid : pids) {
            if (!seen.add(pid)) {
                throw new DaemonException(Kind.SOURCE, "pid " + pid
                        + ": given more than once (a guest's name must be unique)");
            }
        }
        List<ProcessSource> opened = new ArrayList<>();
        try {
            for (int pid : pids) {
                keep(opened, ProcessSource.forPid(pid));
            }
            if (qemu) {
                openQemuGuests(seen, opened, skipped);
            }
            return opened;
        } catch (RuntimeException e) {
            closeAllAfter(opened, e);
            throw ProcessSource.mapped(e);
        } catch (Error e) {     // an OutOfMemoryError too: no source is left open
            closeAllAfter(opened, e);
            throw e;
        }
    }

    /** Adds {@code source} to {@code opened}, or closes it if the list cannot grow (an OutOfMemoryError). */
    private static void keep(List<ProcessSource> opened, ProcessSource source) {
        try {
            opened.add(source);
        } catch (RuntimeException | Error e) {
            try {
                source.close();
            } catch (RuntimeException suppressed) {
                e.addSuppressed(suppressed);
            }
            throw e;
        }
    }

    private static void openQemuGuests(Set<Integer> pids, List<ProcessSource> opened, Consumer<String> skipped) {
        List<QemuGuest> guests = QemuGuests.discover();
        if (guests.isEmpty()) {
            throw new DaemonException(Kind.SOURCE,
                    "QEMU guests (scan --qemu, the daemon's source=qemu): no running QEMU process "
                            + "(qemu-system-* or qemu-kvm) was found");
        }
        int found = 0;
        for (QemuGuest guest : guests) {
            if (pids.contains(guest.pid())) {
                throw new DaemonException(Kind.SOURCE, "pid " + guest.pid() + ": given as a pid and found among "
                        + "the QEMU guests; give one or the other (its guest RAM would be counted twice)");
            }
            if (guest.ram() == null) {
                skipped.accept("pid " + guest.pid() + " (" + guest.commandLine().binary()
                        + "): guest RAM not found, skipped: " + guest.problem());
                continue;
            }
            try {
                keep(opened, ProcessSource.forQemu(guest));
                found++;
            } catch (ProcessScanException e) {
                if (e.kind() != ProcessScanException.Kind.NO_SUCH_PROCESS && e.kind() != ProcessScanException.Kind.EXITED) {
                    throw e;
                }
                skipped.accept(e.getMessage() + "; skipped (it exited after it was found)");
            }
        }
        if (found == 0) {
            throw new DaemonException(Kind.SOURCE, "--qemu: found " + guests.size() + " QEMU process"
                    + (guests.size() == 1 ? "" : "es") + " but the RAM of none could be read");
        }
    }

    /**
     * Closes every source, each even if one before it throws, and throws the first failure at the end, with
     * the others suppressed in it. Allocates nothing unless a close throws, so an OutOfMemoryError cannot
     * stop it before it has closed them all.
     */
    public static void closeAll(List<ProcessSource> sources) {
        RuntimeException failure = null;
        for (int i = 0; i < sources.size(); i++) {      // by index: an iterator is an allocation
            try {
                sources.get(i).close();
            } catch (RuntimeException e) {
                if (failure == null) {
                    failure = e;
                } else {
                    failure.addSuppressed(e);
                }
            }
        }
        if (failure != null) {
            throw failure;
        }
    }

    /** {@link #closeAll} after {@code failure}, adding to it what the closes throw. */
    static void closeAllAfter(List<ProcessSource> sources, Throwable failure) {
        try {
            closeAll(sources);
        } catch (RuntimeException e) {
            failure.addSuppressed(e);
        }
    }
}
