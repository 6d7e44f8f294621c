package io.samepage.host;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Optional;

/**
 * Finds running QEMU guests and the mapping that holds each one's RAM, from {@code /proc} alone (no
 * QMP socket, no libvirt).
 *
 * <h2>The heuristic</h2>
 * A process is a QEMU guest if its argv[0] is {@code qemu-system-*} or {@code qemu-kvm}. Its RAM size
 * and backing come from its command line ({@link QemuCommandLine}); the mapping is then chosen from
 * {@code /proc/PID/maps}:
 * <ol>
 *   <li>{@code memory-backend-file} or {@code -mem-path}: the mapping of that file, or of a file in
 *       that directory (QEMU creates and unlinks {@code qemu_back_mem.*} there), of the RAM size, else
 *       the largest such mapping at least that size.</li>
 *   <li>{@code memory-backend-memfd}: a {@code /memfd:memory-backend-memfd} mapping, chosen by size
 *       the same way.</li>
 *   <li>Anonymous (QEMU's default): the one private anonymous {@code rw-p} mapping of exactly the RAM
 *       size. QEMU maps guest RAM that way, with a guard page after it; the TCG code buffer is
 *       executable ({@code rwxp}) and so never taken for it. If there is not exactly one, the largest
 *       anonymous {@code rw-p} mapping at least the RAM size (lowest address first among equals).</li>
 * </ol>
 *
 * <h2>Limits</h2>
 * <ul>
 *   <li>Guests whose RAM is split over several backends (NUMA with several {@code memdev}s) are not
 *       located; neither are backends other than ram, file and memfd.</li>
 *   <li>Hot-plugged memory (DIMMs, virtio-mem) is not part of the RAM found.</li>
 *   <li>Rule 3's fallback is a guess: two anonymous mappings of the RAM size, or RAM merged by the
 *       kernel with a neighbouring mapping of the same flags, give the largest candidate, which may
 *       hold more than guest RAM. {@link QemuGuest#foundBy()} says which rule matched.</li>
 *   <li>Without {@code -m}, the RAM size is QEMU's x86 default, 128 MiB; other machines differ.</li>
 *   <li>A file or memfd page of the RAM that is in the page cache but not mapped by QEMU (never
 *       touched through this mapping) shows as not present in QEMU's pagemap.</li>
 * </ul>
 * QMP's {@code query-memory-devices} and {@code info ramblock} would be exact but need the guest's
 * monitor socket and its owner's permission; {@code /proc} works for any guest this user may read.
 *
 * <p>Stateless and thread safe.
 */
public final class QemuGuests {

    private static final String DELETED = " (deleted)";
    private static final String MEMFD_BACKEND = "/memfd:memory-backend-memfd";

    private QemuGuests() {
    }

    /**
     * Every QEMU guest running now, by ascending pid; processes that exit while being looked at are
     * left out.
     *
     * @throws ProcessScanException PERMISSION_DENIED if a QEMU process's maps cannot be read
     */
    public static List<QemuGuest> discover() {
        return discover(Path.of("/proc"));
    }

    /** {@link #discover()} over a directory laid out like {@code /proc} (tests use recorded files). */
    static List<QemuGuest> discover(Path proc) {
        List<Integer> pids = new ArrayList<>();
        try (DirectoryStream<Path> entries = Files.newDirectoryStream(proc, entry -> isPid(entry.getFileName().toString()))) {
            for (Path entry : entries) {
                pids.add(Integer.parseInt(entry.getFileName().toString()));
            }
        } catch (IOException e) {
            throw new ProcessScanException(ProcessScanException.Kind.IO, 0, "listing " + proc + " failed: "
                    + e.getMessage(), e);
        }
        pids.sort(Comparator.naturalOrder());
        List<QemuGuest> guests = new ArrayList<>();
        for (int pid : pids) {
            Path dir = proc.resolve(Integer.toString(pid));
            Optional<QemuCommandLine> commandLine;
            try {
                commandLine = QemuCommandLine.parse(Files.readAllBytes(dir.resolve("cmdline")));
            } catch (IOException e) {
                continue;
            }
            if (commandLine.isEmpty()) {
                continue;
            }
            String maps;
            try {
                maps = new String(Files.readAllBytes(dir.resolve("maps")), StandardCharsets.UTF_8);
            } catch (NoSuchFileException e) {
                continue;
            } catch (IOException e) {
                throw ProcessScanException.ofIoException(pid, "/proc/" + pid + "/maps",
                        ProcessScanException.Kind.EXITED, e);
            }
            if (!maps.isEmpty()) {
                guests.add(locateRam(pid, commandLine.get(), MemoryMaps.parse(pid, maps)));
            }
        }
        return guests;
    }

    /** Applies the heuristic to one QEMU process's command line and mappings. */
    public static QemuGuest locateRam(int pid, QemuCommandLine commandLine, List<MemoryRegion> regions) {
        if (commandLine.problem() != null) {
            return notFound(pid, commandLine, commandLine.problem());
        }
        long ramBytes = commandLine.ramBytes();
        return switch (commandLine.backing()) {
            case FILE -> {
                String memPath = stripSlash(commandLine.memPath());
                List<MemoryRegion> files = regions.stream().filter(r -> isFileOf(r, memPath)).toList();
                yield bySize(pid, commandLine, files, QemuGuest.RamMatch.MEMORY_BACKEND_FILE,
                        "no mapping of " + memPath + " or of a file in it, of at least " + ramBytes + " bytes");
            }
            case MEMFD -> {
                List<MemoryRegion> memfds = regions.stream().filter(r -> r.path().startsWith(MEMFD_BACKEND)).toList();
                yield bySize(pid, commandLine, memfds, QemuGuest.RamMatch.MEMORY_BACKEND_MEMFD,
                        "no " + MEMFD_BACKEND + " mapping of at least " + ramBytes + " bytes");
            }
            case ANONYMOUS -> {
                List<MemoryRegion> anonymous = regions.stream()
                        .filter(r -> r.anonymous() && r.permissions().equals("rw-p")).toList();
                List<MemoryRegion> exact = anonymous.stream().filter(r -> r.bytes() == ramBytes).toList();
                if (exact.size() == 1) {
                    yield new QemuGuest(pid, commandLine, exact.getFirst(), QemuGuest.RamMatch.ANONYMOUS_EXACT, null);
                }
                Optional<MemoryRegion> largest = largestAtLeast(anonymous, ramBytes);
                yield largest.map(r -> new QemuGuest(pid, commandLine, r, QemuGuest.RamMatch.LARGEST_ANONYMOUS, null))
                        .orElseGet(() -> notFound(pid, commandLine, "no private anonymous rw-p mapping of at least "
                                + ramBytes + " bytes (the RAM size)"));
            }
        };
    }

    /** The candidate of exactly the RAM size, else the largest at least that size. */
    private static QemuGuest bySize(int pid, QemuCommandLine commandLine, List<MemoryRegion> candidates,
            QemuGuest.RamMatch match, String problem) {
        Optional<MemoryRegion> exact = candidates.stream().filter(r -> r.bytes() == commandLine.ramBytes()).findFirst();
        Optional<MemoryRegion> chosen = exact.isPresent() ? exact : largestAtLeast(candidates, commandLine.ramBytes());
        return chosen.map(r -> new QemuGuest(pid, commandLine, r, match, null))
                .orElseGet(() -> notFound(pid, commandLine, problem));
    }

    private static Optional<MemoryRegion> largestAtLeast(List<MemoryRegion> candidates, long bytes) {
        MemoryRegion best = null;
        for (MemoryRegion r : candidates) {
            if (Long.compareUnsigned(r.bytes(), bytes) >= 0 && (best == null || r.bytes() > best.bytes())) {
                best = r;
            }
        }
        return Optional.ofNullable(best);
    }

    /** The region maps {@code memPath} itself, or a file directly inside the directory {@code memPath}. */
    private static boolean isFileOf(MemoryRegion region, String memPath) {
        if (region.inode() == 0) {
            return false;
        }
        String path = region.path().endsWith(DELETED)
                ? region.path().substring(0, region.path().length() - DELETED.length()) : region.path();
        int slash = path.lastIndexOf('/');
        return path.equals(memPath) || (slash > 0 && path.substring(0, slash).equals(memPath));
    }

    private static String stripSlash(String path) {
        return path.length() > 1 && path.endsWith("/") ? path.substring(0, path.length() - 1) : path;
    }

    private static QemuGuest notFound(int pid, QemuCommandLine commandLine, String problem) {
        return new QemuGuest(pid, commandLine, null, QemuGuest.RamMatch.NOT_FOUND, problem);
    }

    private static boolean isPid(String name) {
        if (name.isEmpty() || name.length() > 9) {
            return false;
        }
        for (int i = 0; i < name.length(); i++) {
            if (name.charAt(i) < '0' || name.charAt(i) > '9') {
                return false;
            }
        }
        return true;
    }
}
