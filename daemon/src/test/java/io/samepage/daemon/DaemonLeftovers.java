package io.samepage.daemon;

import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;

/**
 * What a daemon leaves in this process that it should not, for the allocation fault scenarios: its
 * threads (by name), the ports it listens on (its own sockets, from {@code /proc}), and the mappings of
 * files under a directory ({@code /proc/self/maps}). Each is compared with a baseline taken before, so
 * other tests' threads and sockets do not count.
 */
final class DaemonLeftovers {

    /** Names of the daemon's threads, as a prefix: its agents', the scanner's workers', the HTTP server's. */
    private static final List<String> THREAD_NAMES = List.of("samepage-", "HTTP-Dispatcher");

    private final Set<Thread> threadsBefore;
    private final Set<Integer> portsBefore;

    private DaemonLeftovers(Set<Thread> threadsBefore, Set<Integer> portsBefore) {
        this.threadsBefore = threadsBefore;
        this.portsBefore = portsBefore;
    }

    /** A baseline: the daemon-named threads alive and the ports this process listens on now. */
    static DaemonLeftovers baseline() throws IOException {
        return new DaemonLeftovers(daemonThreads(), listeningPorts());
    }

    /**
     * Threads with a daemon's name alive now that were not at the baseline; a thread that is ending is
     * given up to two seconds to end (an HTTP server's dispatcher ends after its stop returns).
     */
    List<String> threadsLeft() throws InterruptedException {
        List<String> left = new ArrayList<>();
        for (Thread thread : daemonThreads()) {
            if (!threadsBefore.contains(thread)) {
                thread.join(2_000);
                if (thread.isAlive()) {
                    left.add(thread.getName());
                }
            }
        }
        return left;
    }

    /** Ports this process listens on now that it did not at the baseline. */
    Set<Integer> portsLeft() throws IOException {
        Set<Integer> left = listeningPorts();
        left.removeAll(portsBefore);
        return left;
    }

    /** Whether {@code port} can be bound on loopback now: nothing listens there. */
    static boolean free(int port) {
        try (ServerSocket socket = new ServerSocket()) {
            socket.bind(new InetSocketAddress(InetAddress.getLoopbackAddress(), port));
            return true;
        } catch (IOException e) {
            return false;
        }
    }

    /** The lines of {@code /proc/self/maps} that map a file under {@code dir} (deleted ones too). */
    static List<String> mappingsUnder(Path dir) throws IOException {
        String prefix = " " + dir.toAbsolutePath() + "/";
        try (var lines = Files.lines(Path.of("/proc/self/maps"))) {
            return lines.filter(line -> line.contains(prefix)).map(line -> line.substring(line.indexOf(prefix) + 1)).toList();
        }
    }

    /** The names of the files in {@code dir} (not below it), sorted. */
    static Set<String> files(Path dir) throws IOException {
        Set<String> names = new TreeSet<>();
        try (DirectoryStream<Path> listing = Files.newDirectoryStream(dir)) {
            listing.forEach(p -> names.add(p.getFileName().toString()));
        }
        return names;
    }

    private static Set<Thread> daemonThreads() {
        Set<Thread> threads = new HashSet<>();
        for (Thread thread : Thread.getAllStackTraces().keySet()) {
            if (THREAD_NAMES.stream().anyMatch(thread.getName()::startsWith)) {
                threads.add(thread);
            }
        }
        return threads;
    }

    /** The TCP ports this process's own sockets listen on ({@code /proc/net/tcp*} LISTEN rows whose inode is one of its fds). */
    private static Set<Integer> listeningPorts() throws IOException {
        Set<String> inodes = new HashSet<>();
        try (DirectoryStream<Path> fds = Files.newDirectoryStream(Path.of("/proc/self/fd"))) {
            for (Path fd : fds) {
                try {
                    String target = Files.readSymbolicLink(fd).toString();
                    if (target.startsWith("socket:[")) {
                        inodes.add(target.substring(8, target.length() - 1));
                    }
                } catch (IOException gone) {
                    // closed since the listing
                }
            }
        }
        Set<Integer> ports = new TreeSet<>();
        for (String table : List.of("/proc/self/net/tcp", "/proc/self/net/tcp6")) {
            Path file = Path.of(table);
            if (!Files.exists(file)) {
                continue;
            }
            List<String> rows = Files.readAllLines(file);
            for (String line : rows.subList(1, rows.size())) {
                String[] fields = line.trim().split("\\s+");
                if (fields.length > 9 && fields[3].equals("0A") && inodes.contains(fields[9])) {
                    String local = fields[1];
                    ports.add(Integer.parseInt(local.substring(local.indexOf(':') + 1), 16));
                }
            }
        }
        return ports;
    }
}
