package io.samepage.testing;

import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

/**
 * The host-wide lock on kernel KSM. A host has one KSM ({@code /sys/kernel/mm/ksm}, and one ksmd that
 * merges every process's mergeable memory), and builds on one machine run at once: a test that writes its
 * knobs, compares them before and after, or holds memory advised {@code MADV_MERGEABLE} whose pages must
 * stay as written, holds this lock for that while, so that it neither restores another build's knobs nor
 * has its pages merged by a ksmd another build started. {@code samepage bench density} takes the same lock
 * ({@code DensitySuite.KSM_LOCK_FILE}).
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

    /** Takes the lock, waiting while another process holds it. */
    public static HostKsmLock take() throws IOException {
        FileChannel file = FileChannel.open(PATH, StandardOpenOption.CREATE, StandardOpenOption.WRITE);
        try {
            return new HostKsmLock(file, file.lock());
        } catch (IOException | RuntimeException e) {
            file.close();
            throw e;
        }
    }

    /** Runs {@code work} holding the lock, waiting for it if another process holds it. */
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
