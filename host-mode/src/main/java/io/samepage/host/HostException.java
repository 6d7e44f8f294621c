package io.samepage.host;

/**
 * The one error type of this module: what went wrong on the host, in a message an operator can act
 * on. Catch this to handle every failure of the module; its two kinds carry what is specific to them:
 * {@link ProcessScanException} (reading another process: which pid, and whether it is gone, refused or
 * broken), {@link KernelKsmException} (kernel KSM: absent, read-only, an invalid or refused knob,
 * and what a failed batch had already written).
 */
public abstract sealed class HostException extends RuntimeException
        permits ProcessScanException, KernelKsmException {

    private static final long serialVersionUID = 1L;

    HostException(String message, Throwable cause) {
        super(message, cause);
    }
}
