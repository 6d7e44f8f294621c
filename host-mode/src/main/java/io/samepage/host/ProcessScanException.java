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

    private static final String PRIVILEGE_HINT = "(run as root or with CAP_SYS_PTRACE)";

    /** Reading memory ({@code /proc/PID/mem}) needs ptrace attach rights, which Yama restricts further. */
    private static final String ATTACH_HINT = "(run as root or with CAP_SYS_PTRACE; kernel.yama.ptrace_scope "
            + "above 0 also refuses processes that are not this one's descendants)";

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
                + (what.endsWith("/mem") ? ATTACH_HINT : PRIVILEGE_HINT));
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

    private static boolean isEperm(IOException e) {
        return e instanceof FileSystemException f && "Operation not permitted".equals(f.getReason());
    }

    private static boolean isEsrch(IOException e) {
        return e instanceof FileSystemException f ? "No such process".equals(f.getReason())
                : "No such process".equals(e.getMessage());
    }
}
