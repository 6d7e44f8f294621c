package io.samepage.testing;

import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.file.AccessDeniedException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

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
 */
public final class HostKsmLock implements AutoCloseable {

    /** The lock file, shared with the end-to-end tests' and the density suite's. */
    public static final Path PATH = Path.of("/tmp/samepage-e2e-kernel-ksm.lock");

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

    /** Takes the lock for this process alone, waiting while another process holds or shares it. */
    public static HostKsmLock take() throws IOException {
        return lock(FileChannel.open(PATH, StandardOpenOption.CREATE, StandardOpenOption.READ,
                StandardOpenOption.WRITE), false);
    }

    /**
     * Shares the lock, waiting while another process holds it alone. A shared lock needs the file open
     * for reading only, so a user who may not write a lock file another user made can still share it.
     */
    public static HostKsmLock share() throws IOException {
        FileChannel file;
        try {
            file = FileChannel.open(PATH, StandardOpenOption.CREATE, StandardOpenOption.READ,
                    StandardOpenOption.WRITE);
        } catch (AccessDeniedException someoneElses) {
            file = FileChannel.open(PATH, StandardOpenOption.READ);
        }
        return lock(file, true);
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
