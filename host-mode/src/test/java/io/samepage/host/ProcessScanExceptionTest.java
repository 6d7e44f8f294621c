package io.samepage.host;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.io.IOException;
import java.nio.file.AccessDeniedException;
import java.nio.file.FileSystemException;
import java.nio.file.NoSuchFileException;
import org.junit.jupiter.api.Test;

/**
 * How failures become the operator's message and a kind. Permission denied cannot be produced where
 * the tests run as root, so its mapping is tested here, from the exceptions and errno values the
 * kernel gives an unprivileged reader.
 */
class ProcessScanExceptionTest {

    private static final ProcessScanException.Kind BEFORE_OPEN = ProcessScanException.Kind.NO_SUCH_PROCESS;
    private static final ProcessScanException.Kind AFTER_OPEN = ProcessScanException.Kind.EXITED;

    @Test
    void aRefusedProcFileNamesTheFileAndTheRemedy() {
        ProcessScanException e = ProcessScanException.ofIoException(1, "/proc/1/pagemap", BEFORE_OPEN,
                new AccessDeniedException("/proc/1/pagemap"));
        assertEquals(ProcessScanException.Kind.PERMISSION_DENIED, e.kind());
        assertEquals(1, e.pid());
        assertEquals("pid 1: permission denied reading /proc/1/pagemap (run as root or with CAP_SYS_PTRACE)",
                e.getMessage());
    }

    @Test
    void anEpermIsPermissionDeniedToo() {
        ProcessScanException e = ProcessScanException.ofIoException(1, "/proc/1/maps", AFTER_OPEN,
                new FileSystemException("/proc/1/maps", null, "Operation not permitted"));
        assertEquals(ProcessScanException.Kind.PERMISSION_DENIED, e.kind());
        assertEquals("pid 1: permission denied reading /proc/1/maps (run as root or with CAP_SYS_PTRACE)", e.getMessage());
    }

    @Test
    void aMissingProcDirectoryIsNoSuchProcessBeforeOpeningAndExitedAfter() {
        NoSuchFileException gone = new NoSuchFileException("/proc/1234/stat");
        ProcessScanException before = ProcessScanException.ofIoException(1234, "/proc/1234/stat", BEFORE_OPEN, gone);
        assertEquals(ProcessScanException.Kind.NO_SUCH_PROCESS, before.kind());
        assertEquals("pid 1234: no such process", before.getMessage());
        ProcessScanException after = ProcessScanException.ofIoException(1234, "/proc/1234/maps", AFTER_OPEN, gone);
        assertEquals(ProcessScanException.Kind.EXITED, after.kind());
        assertEquals("pid 1234: has exited (/proc/1234/maps is gone)", after.getMessage());
    }

    @Test
    void anotherIoErrorKeepsItsCause() {
        IOException cause = new IOException("Input/output error");
        ProcessScanException e = ProcessScanException.ofIoException(5, "/proc/5/pagemap", AFTER_OPEN, cause);
        assertEquals(ProcessScanException.Kind.IO, e.kind());
        assertEquals("pid 5: reading /proc/5/pagemap failed: Input/output error", e.getMessage());
        assertEquals(cause, e.getCause());
    }

    @Test
    void aRefusedMemoryFileNamesYamaBesideTheCapability() {
        ProcessScanException e = ProcessScanException.ofIoException(1, "/proc/1/mem", AFTER_OPEN,
                new AccessDeniedException("/proc/1/mem"));
        assertEquals(ProcessScanException.Kind.PERMISSION_DENIED, e.kind());
        assertEquals("pid 1: permission denied reading /proc/1/mem (run as root or with CAP_SYS_PTRACE; "
                + "kernel.yama.ptrace_scope above 0 also refuses processes that are not this one's descendants)",
                e.getMessage());
    }
}
