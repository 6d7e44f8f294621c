package io.samepage.host;

import java.io.IOException;
import java.nio.file.AccessDeniedException;
import java.nio.file.FileSystemException;
import java.nio.file.NoSuchFileException;

/**
 * The error type of reading another process's memory ({@link ProcessMemory}, {@link QemuGuests}): its
 * message is what an operator needs to act, always starting {@code pid N: }; its {@link Kind} is what a
 * program needs to decide.
 *
 * <p>A process that exits while its memory is being copied is not an error: the copy ends and its
 * result says so ({@link RegionScan#exited()}). {@link Kind#EXITED} is thrown only where there is no
 * result to mark: a process that is a zombie when opened, or gone when its map is read.
 */
public final class ProcessScanException extends HostException {

    private static final long serialVersionUID = 1L;

    /** What went wrong, for a program to decide on. */
    public enum Kind {
        /** No process has this id (or it was reaped before it could be opened). */
        NO_SUCH_PROCESS,
        /** The kernel refused access: another user's process, or ptrace rules (Yama, capabilities). */
        PERMISSION_DENIED,
        /** The process has exited: a zombie, or gone between two reads. */
        EXITED,
        /** Anything else: an I/O error, a {@code /proc} file this code cannot parse, no native access. */
        IO
    }

    static final int EPERM = 1;
    static final int ESRCH = 3;
    static final int EACCES = 13;
    static final int EFAULT = 14;
    static final int ENOMEM = 12;
    static final int ENOSYS = 38;

    private static final String PRIVILEGE_HINT = "(run as root or with CAP_SYS_PTRACE)";

    private final Kind kind;
    private final int pid;

    ProcessScanException(Kind kind, int pid, String what) {
        this(kind, pid, what, null);
    }

    ProcessScanException(Kind kind, int pid, String what, Throwable cause) {
        super("pid " + pid + ": " + what, cause);
        this.kind = kind;
        this.pid = pid;
    }

    public Kind kind() {
        return kind;
    }

    /** The process the error is about. */
    public int pid() {
        return pid;
    }

    static ProcessScanException noSuchProcess(int pid) {
        return new ProcessScanException(Kind.NO_SUCH_PROCESS, pid, "no such process");
    }

    /** {@code what} is the file or call that was refused, e.g. {@code /proc/1/pagemap}. */
    static ProcessScanException permissionDenied(int pid, String what) {
        return new ProcessScanException(Kind.PERMISSION_DENIED, pid, "permission denied reading " + what + " "
                + PRIVILEGE_HINT);
    }

    static ProcessScanException exited(int pid, String when) {
        return new ProcessScanException(Kind.EXITED, pid, "has exited " + when);
    }

    /**
     * Maps an {@link IOException} from opening or reading {@code file} of the process: access refused,
     * the file gone (the process is gone: {@code gone}, which is {@link Kind#NO_SUCH_PROCESS} before the
     * process was opened and {@link Kind#EXITED} after), or another I/O error.
     */
    static ProcessScanException ofIoException(int pid, String file, Kind gone, IOException e) {
        if (e instanceof AccessDeniedException || isEperm(e)) {
            return permissionDenied(pid, file);
        }
        if (e instanceof NoSuchFileException || isEsrch(e)) {
            return gone == Kind.NO_SUCH_PROCESS ? noSuchProcess(pid) : exited(pid, "(" + file + " is gone)");
        }
        return new ProcessScanException(Kind.IO, pid, "reading " + file + " failed: " + e.getMessage(), e);
    }

    /**
     * Maps an {@code errno} of {@code call} (a system call on the process): {@code EPERM} and
     * {@code EACCES} are the ptrace access check, {@code ESRCH} a process that is gone.
     */
    static ProcessScanException ofErrno(int pid, String call, int errno) {
        return switch (errno) {
            case EPERM, EACCES -> new ProcessScanException(Kind.PERMISSION_DENIED, pid, "permission denied reading "
                    + "its memory with " + call + " (run as root or with CAP_SYS_PTRACE; kernel.yama.ptrace_scope "
                    + "above 0 also refuses processes that are not this one's descendants)");
            case ESRCH -> exited(pid, "(" + call + ": ESRCH)");
            case ENOSYS -> new ProcessScanException(Kind.IO, pid, call + " is not available (ENOSYS): the kernel "
                    + "or a seccomp filter forbids it");
            case ENOMEM -> new ProcessScanException(Kind.IO, pid, call + " failed with ENOMEM: the kernel is out of "
                    + "memory for the copy");
            default -> new ProcessScanException(Kind.IO, pid, call + " failed with errno " + errno + "; see "
                    + call + "(2)");
        };
    }

    /** {@code EPERM} comes back as a plain {@link FileSystemException} whose reason is strerror's. */
    private static boolean isEperm(IOException e) {
        return e instanceof FileSystemException f && "Operation not permitted".equals(f.getReason());
    }

    private static boolean isEsrch(IOException e) {
        return e instanceof FileSystemException f ? "No such process".equals(f.getReason())
                : "No such process".equals(e.getMessage());
    }
}
