package io.samepage.daemon;

import java.io.IOException;
import java.net.InetAddress;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;

/**
 * What a daemon leaves in this process that it should not, for the allocation fault scenarios and
 * {@link DaemonTest}: its threads (by name), the ports it listens on and the sockets it holds (its own,
 * from {@code /proc}, never by binding a port, which another process may take meanwhile), and the
 * mappings of files under a directory ({@code /proc/self/maps}). Threads and listening ports are compared
 * with a baseline taken before, so other tests' threads and sockets do not count.
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

    /**
     * This process's own TCP sockets whose local port is {@code port}, in any state (listening, bound,
     * connected): none once whatever bound the port has closed it. Unlike binding the port to see whether
     * it is free, this is about this process alone, so another process that takes the port meanwhile
     * changes nothing.
     */
    static List<OwnSocket> socketsOn(int port) throws IOException {
        List<OwnSocket> on = new ArrayList<>();
        for (OwnSocket socket : ownSockets()) {
            if (socket.port() == port) {
                on.add(socket);
            }
        }
        return on;
    }

    /**
     * A TCP socket of this process, from {@code /proc/self/net/tcp} or {@code tcp6}: its local address
     * (an IPv4-mapped IPv6 address as the IPv4 one), its local port, whether it listens, and its inode,
     * which the link {@code /proc/self/fd/N -> socket:[INODE]} names while a descriptor holds it.
     */
    record OwnSocket(InetAddress address, int port, boolean listening, String inode) {
    }

    /** Whether a descriptor of this process holds the socket of {@code inode} now. */
    static boolean open(String inode) throws IOException {
        return descriptorTargets().contains("socket:[" + inode + "]");
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

    /** The TCP ports this process's own sockets listen on. */
    private static Set<Integer> listeningPorts() throws IOException {
        Set<Integer> ports = new TreeSet<>();
        for (OwnSocket socket : ownSockets()) {
            if (socket.listening()) {
                ports.add(socket.port());
            }
        }
        return ports;
    }

    /** This process's own TCP sockets: the rows of {@code /proc/self/net/tcp*} whose inode one of its descriptors holds. */
    static List<OwnSocket> ownSockets() throws IOException {
        Set<String> held = descriptorTargets();
        List<OwnSocket> sockets = new ArrayList<>();
        for (String table : List.of("/proc/self/net/tcp", "/proc/self/net/tcp6")) {
            Path file = Path.of(table);
            if (!Files.exists(file)) {
                continue;
            }
            List<String> rows = Files.readAllLines(file);
            for (String line : rows.subList(1, rows.size())) {
                String[] fields = line.trim().split("\\s+");
                if (fields.length > 9 && held.contains("socket:[" + fields[9] + "]")) {
                    String local = fields[1];
                    int colon = local.indexOf(':');
                    sockets.add(new OwnSocket(address(local.substring(0, colon)),
                            Integer.parseInt(local.substring(colon + 1), 16), fields[3].equals("0A"), fields[9]));
                }
            }
        }
        return sockets;
    }

    /**
     * An address as {@code /proc/net/tcp*} prints it: hex of the bytes in network order within each 32-bit
     * word, each word in the machine's (little-endian) order.
     */
    private static InetAddress address(String hex) throws IOException {
        byte[] bytes = new byte[hex.length() / 2];
        for (int word = 0; word < bytes.length; word += 4) {
            for (int b = 0; b < 4; b++) {
                bytes[word + 3 - b] = (byte) Integer.parseInt(hex.substring(2 * (word + b), 2 * (word + b) + 2), 16);
            }
        }
        return InetAddress.getByAddress(bytes);     // an IPv4-mapped IPv6 address comes back as the IPv4 one
    }

    /** Where this process's descriptors point now ({@code /proc/self/fd}), each once. */
    private static Set<String> descriptorTargets() throws IOException {
        Set<String> targets = new HashSet<>();
        try (DirectoryStream<Path> fds = Files.newDirectoryStream(Path.of("/proc/self/fd"))) {
            for (Path fd : fds) {
                try {
                    targets.add(Files.readSymbolicLink(fd).toString());
                } catch (IOException gone) {
                    // closed since the listing
                }
            }
        }
        return targets;
    }
}
