package io.samepage.daemon;

import io.samepage.daemon.DaemonException.Kind;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.channels.OverlappingFileLockException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.BasicFileAttributes;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;

/**
 * A daemon's claim on its counters file's path, taken before anything is written there and held until
 * the daemon closes. It refuses, on one line and without writing anything:
 * <ul>
 *   <li>a directory that does not exist (only the default location's directory is created: the operator
 *       named the directory of any other path, and a typo should not become a new directory);</li>
 *   <li>an existing file that is not a samepage counters file (its magic, {@link CountersFile#MAGIC}, is
 *       not there): a memory dump, a config, a source is never replaced; nor is a directory, a FIFO or a
 *       symbolic link (looked at as itself, never followed: a rename would replace the link);</li>
 *   <li>a path another daemon holds: its lock, an exclusive {@link FileLock} on the sibling
 *       {@code .NAME.lock}, which the kernel releases when that daemon's process ends, however it ends;
 *       or, for a daemon that takes no lock, a heartbeat younger than
 *       {@link CountersFile#LIVENESS_TIMEOUT_MILLIS} from a process that is alive, as Aeron's driver
 *       refuses a CnC file whose heartbeat is live.</li>
 * </ul>
 * A file left by a daemon that is gone (closed, or stale: its lock free and its heartbeat old or its
 * process gone) may be replaced. The lock file stays when the daemon stops: removing it would let a
 * daemon that opened it before the removal and one that creates it anew both hold "the" lock.
 *
 * <p>The path is checked here, at the claim, so a launch fails before any work; a file renamed there
 * later, while the daemon starts, is caught when the new file is put in place ({@link CountersFile},
 * {@link #checkReplaceable}).
 *
 * <p>Rejected: locking the counters file itself. A new counters file is renamed over the old one, so a
 * lock on the old file's inode says nothing about the new one, and two daemons starting together
 * would each lock a file of their own.
 *
 * <p>Not thread safe; one per daemon.
 */
final class CountersFileClaim implements AutoCloseable {

    /**
     * The lock files this JVM holds. A lock belongs to the process, and closing any descriptor of the
     * file drops it (POSIX record locks), so a second claim in the same JVM must not even open the file.
     */
    private static final Set<Path> HELD = ConcurrentHashMap.newKeySet();

    private final Path lockFile;
    private final FileChannel lockChannel;
    private boolean closed;

    private CountersFileClaim(Path lockFile, FileChannel lockChannel) {
        this.lockFile = lockFile;
        this.lockChannel = lockChannel;
    }

    /**
     * Claims {@code path} for the process {@code pid}.
     *
     * @param createDirectory whether a missing directory is created (the default location) or refused
     * @throws DaemonException {@link Kind#COUNTERS_FILE} naming the path and why it cannot be claimed;
     *                         nothing at the path has changed
     */
    static CountersFileClaim acquire(Path path, boolean createDirectory, long pid) {
        Path absolute = path.toAbsolutePath();
        Path directory = absolute.getParent();
        checkDirectory(path, directory, createDirectory);
        Header existing = existing(path, absolute);
        if (!Files.isWritable(directory)) {
            throw refused(path, "cannot be created: " + directory + ": permission denied");
        }
        Path lockFile = absolute.resolveSibling("." + absolute.getFileName() + ".lock").normalize();
        if (!HELD.add(lockFile)) {
            throw inUse(path, existing, "holds its lock " + lockFile);
        }
        // From here on, whatever is thrown (an OutOfMemoryError too) gives the path back: a path left in
        // HELD would be refused as "in use" to every later claim in this process.
        FileChannel channel = null;
        try {
            channel = FileChannel.open(lockFile, StandardOpenOption.CREATE, StandardOpenOption.WRITE);
            FileLock lock;
            try {
                lock = channel.tryLock();
            } catch (OverlappingFileLockException e) {
                lock = null;
            }
            if (lock == null) {
                throw inUse(path, existing, "holds its lock " + lockFile);
            }
            if (existing != null && existing.live(pid)) {
                throw inUse(path, existing, "sent a heartbeat " + (System.currentTimeMillis() - existing.heartbeatMillis)
                        + " ms ago");
            }
            return new CountersFileClaim(lockFile, channel);
        } catch (IOException | RuntimeException | Error e) {
            if (channel != null) {
                closeQuietly(channel, e);
            }
            HELD.remove(lockFile);
            if (e instanceof DaemonException d) {
                throw d;
            }
            if (e instanceof Error error) {
                throw error;
            }
            throw refused(path, "cannot be locked: " + (e instanceof IOException io ? IoErrors.reason(io) : e.toString()));
        }
    }

    /** Releases the lock; the lock file stays. Idempotent. */
    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        try {
            lockChannel.close();
        } catch (IOException e) {
            // The kernel drops the lock with the descriptor, or with the process: nothing is held either way.
        } finally {
            HELD.remove(lockFile);
        }
    }

    private static void checkDirectory(Path path, Path directory, boolean createDirectory) {
        if (Files.isDirectory(directory)) {
            return;
        }
        if (Files.exists(directory)) {
            throw refused(path, "cannot be created: " + directory + ": not a directory");
        }
        if (!createDirectory) {
            throw refused(path, "cannot be created: directory " + directory
                    + " does not exist (create it, or give another counters_file)");
        }
        try {
            Files.createDirectories(directory);
        } catch (IOException e) {
            throw refused(path, "cannot be created: " + IoErrors.reason(e));
        }
    }

    /**
     * Refuses, for the counters file {@code path}, what is at {@code file} unless it is nothing or a
     * counters file: {@code file} is the path itself, or the name an exchange moved the path's old file to.
     *
     * @throws DaemonException {@link Kind#COUNTERS_FILE} as the claim refuses a file that is not one
     */
    static void checkReplaceable(Path path, Path file) {
        existing(path, file);
    }

    /**
     * The header of the counters file at {@code file} (the path, or where its file was moved), null if
     * there is none; refuses anything else there. A symbolic link is looked at, not followed.
     */
    private static Header existing(Path path, Path file) {
        BasicFileAttributes attributes;
        try {
            attributes = Files.readAttributes(file, BasicFileAttributes.class, LinkOption.NOFOLLOW_LINKS);
        } catch (NoSuchFileException e) {
            return null;
        } catch (IOException e) {
            throw refused(path, "cannot be looked at: " + IoErrors.reason(e));
        }
        if (attributes.isDirectory()) {
            throw refused(path, "is a directory");
        }
        if (attributes.isSymbolicLink()) {
            throw refused(path, "is a symbolic link; not replacing it (give the path it points to, or another "
                    + "counters_file)");
        }
        if (!attributes.isRegularFile()) {
            throw refused(path, "exists and is not a regular file; not replacing it (give another counters_file)");
        }
        ByteBuffer header = ByteBuffer.allocate(CountersFile.HEADER_BYTES).order(ByteOrder.nativeOrder());
        // O_NOFOLLOW: a symbolic link renamed in since the look above fails here instead of being read through.
        try (FileChannel channel = FileChannel.open(file, StandardOpenOption.READ, LinkOption.NOFOLLOW_LINKS)) {
            while (header.hasRemaining() && channel.read(header) >= 0) {
                // reads up to the header's length, or the file's if shorter
            }
        } catch (NoSuchFileException e) {
            return null;
        } catch (IOException e) {
            throw refused(path, "exists and cannot be read, so it cannot be told to be a counters file: "
                    + IoErrors.reason(e));
        }
        if (header.position() < CountersFile.OFFSET_PID || header.getInt(CountersFile.OFFSET_MAGIC) != CountersFile.MAGIC) {
            throw refused(path, "exists and is not a samepage counters file; not replacing it (remove it, or give "
                    + "another counters_file)");
        }
        boolean current = header.position() >= CountersFile.HEADER_BYTES
                && header.getInt(CountersFile.OFFSET_VERSION) == CountersFile.LAYOUT_VERSION;
        return current ? new Header(header.getLong(CountersFile.OFFSET_PID),
                header.getLong(CountersFile.OFFSET_STATE) == CountersFile.STATE_RUNNING,
                header.getLong(CountersFile.OFFSET_HEARTBEAT)) : new Header(0, false, 0);
    }

    /** What a counters file at the path says about its daemon. */
    private record Header(long pid, boolean running, long heartbeatMillis) {

        /** Whether another daemon still runs on it: state running, a recent heartbeat, its process alive. */
        boolean live(long claimingPid) {
            return running && pid != claimingPid
                    && System.currentTimeMillis() - heartbeatMillis < CountersFile.LIVENESS_TIMEOUT_MILLIS
                    && ProcessHandle.of(pid).map(ProcessHandle::isAlive).orElse(false);
        }
    }

    private static DaemonException inUse(Path path, Header existing, String evidence) {
        String daemon = existing != null && existing.pid != 0 ? "the samepage daemon with pid " + existing.pid
                : "another samepage daemon";
        return refused(path, "in use: " + daemon + " " + evidence + " (stop it, or give another counters_file)");
    }

    private static DaemonException refused(Path path, String what) {
        return new DaemonException(Kind.COUNTERS_FILE, "counters file " + path + ": " + what);
    }

    private static void closeQuietly(FileChannel channel, Throwable failure) {
        try {
            channel.close();
        } catch (IOException e) {
            failure.addSuppressed(e);
        }
    }

    /**
     * Deletes the {@code .NAME.PID.new} files that daemons killed while starting left beside the path
     * (they are never published): with the claim held, no other daemon is preparing this path, so none
     * of them is anyone's. Without this they piled up, one per killed start, in /run's memory. Only
     * counters files go: a file of someone else's that a start could not put back keeps such a name.
     */
    static void deleteStaleTemporaries(Path absolute) throws IOException {
        String prefix = "." + absolute.getFileName() + ".";
        try (java.nio.file.DirectoryStream<Path> siblings = Files.newDirectoryStream(absolute.getParent(), p -> {
            String name = p.getFileName().toString();
            return name.startsWith(prefix) && name.endsWith(".new") && name.length() > prefix.length() + 4
                    && name.substring(prefix.length(), name.length() - 4).chars().allMatch(Character::isDigit);
        })) {
            for (Path stale : siblings) {
                if (isCountersFile(absolute, stale)) {
                    Files.deleteIfExists(stale);
                }
            }
        }
    }

    /**
     * Whether {@code file} is a counters file (a daemon's, left by a start that was killed): a file of
     * someone else's that a start could not put back stays under such a name, and must not be deleted.
     */
    private static boolean isCountersFile(Path path, Path file) {
        try {
            checkReplaceable(path, file);
            return Files.isRegularFile(file, LinkOption.NOFOLLOW_LINKS);
        } catch (DaemonException notOne) {
            return false;
        }
    }
}
