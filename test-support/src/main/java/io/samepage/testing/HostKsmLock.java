package io.samepage.testing;

import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.file.AccessDeniedException;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.PosixFilePermission;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.Set;

/**
 * The host-wide lock on kernel KSM. A host has one KSM ({@code /sys/kernel/mm/ksm}, and one ksmd that
 * merges every process's mergeable memory), and builds on one machine run at once: a test that writes its
 * knobs, or compares them before and after, {@link #take takes} this lock for that while, so that it
 * neither restores another build's knobs nor reads them half changed; a test that only needs KSM left
 * alone, such as one holding memory advised {@code MADV_MERGEABLE} whose pages must stay as written,
 * {@link #share shares} it, so that no build runs ksmd meanwhile. {@code samepage bench density} takes
 * the same lock ({@code DensitySuite.KSM_LOCK_FILE}).
 *
 * <p>A POSIX record lock ({@code fcntl}), as {@link FileChannel#lock()} takes it: it excludes other
 * processes, not other threads of this one, and the kernel drops it when the process dies. Single
 * holder per JVM: taking it twice in one JVM throws {@link java.nio.channels.OverlappingFileLockException}.
 *
 * <p>Taking it alone needs the file open for writing, so whoever makes the file makes it 0666 (the
 * density suite's {@code KsmMode} too): made 0644 by root's build, as the umask leaves it, it would let
 * no other user's build take the lock.
 */
public final class HostKsmLock implements AutoCloseable {

    /** The lock file, shared with the end-to-end tests' and the density suite's. */
    public static final Path PATH = Path.of("/tmp/samepage-e2e-kernel-ksm.lock");

    private static final Set<PosixFilePermission> EVERY_USER_WRITES = PosixFilePermissions.fromString("rw-rw-rw-");

    /** Work done while holding the lock. */
    @FunctionalInterface
    public interface Locked {
        void run() throws Exception;
    }

    private final FileChannel file;
    private final FileLock lock;

    private HostKsmLock(FileChannel file, FileLock lock) {
        this.file = file;
        this.lock = lock;
    }

    /**
     * Takes the lock for this process alone, waiting while another process holds or shares it.
     *
     * @throws AccessDeniedException if the file exists and this user may not write it; its message says what to do
     */
    public static HostKsmLock take() throws IOException {
        return take(PATH);
    }

    /** {@link #take()} on the lock file {@code path} (for tests). */
    static HostKsmLock take(Path path) throws IOException {
        FileChannel file;
        try {
            file = open(path);
        } catch (AccessDeniedException someoneElses) {
            throw new AccessDeniedException(path.toString(), null, "this user may not open it for writing, which the "
                    + "exclusive lock needs; its owner or root can let every user write it: chmod 666 " + path);
        }
        return lock(file, false);
    }

    /**
     * Shares the lock, waiting while another process holds it alone. A shared lock needs the file open
     * for reading only, so a user who may not write a lock file another user made can still share it.
     */
    public static HostKsmLock share() throws IOException {
        return share(PATH);
    }

    /** {@link #share()} on the lock file {@code path} (for tests). */
    static HostKsmLock share(Path path) throws IOException {
        FileChannel file;
        try {
            file = open(path);
        } catch (AccessDeniedException someoneElses) {
            file = FileChannel.open(path, StandardOpenOption.READ);
        }
        return lock(file, true);
    }

    /**
     * {@code path} open for reading and writing, made 0666 if this call made it. It is opened before it
     * is made: an open that may create ({@code O_CREAT}) is refused on another user's file in a sticky
     * directory such as /tmp where the kernel protects regular files ({@code fs.protected_regular}),
     * though the file is writable.
     */
    private static FileChannel open(Path path) throws IOException {
        while (true) {      // until opened or made: each turn is one lost race with another process
            try {
                return FileChannel.open(path, StandardOpenOption.READ, StandardOpenOption.WRITE);
            } catch (NoSuchFileException absent) {
                // made below
            }
            try {
                FileChannel made = FileChannel.open(path, StandardOpenOption.CREATE_NEW, StandardOpenOption.READ,
                        StandardOpenOption.WRITE);
                try {
                    Files.setPosixFilePermissions(path, EVERY_USER_WRITES);     // past the umask
                } catch (IOException | RuntimeException e) {
                    made.close();
                    throw e;
                }
                return made;
            } catch (FileAlreadyExistsException raced) {
                // another process made it since: open theirs
            }
        }
    }

    private static HostKsmLock lock(FileChannel file, boolean shared) throws IOException {
        try {
            return new HostKsmLock(file, file.lock(0, Long.MAX_VALUE, shared));
        } catch (IOException | RuntimeException e) {
            file.close();
            throw e;
        }
    }

    /** Runs {@code work} holding the lock alone ({@link #take}). */
    public static void run(Locked work) throws Exception {
        try (HostKsmLock _ = take()) {
            work.run();
        }
    }

    /** Releases the lock. */
    @Override
    public void close() throws IOException {
        try {
            lock.release();
        } finally {
            file.close();
        }
    }
}
