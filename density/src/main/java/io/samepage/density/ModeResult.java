package io.samepage.density;

/**
 * One mode at one N.
 *
 * @param mode          the mode
 * @param guests        N
 * @param hostBytes     host memory the guests take in this mode (each mode's {@code --help} entry says
 *                      what it counts); -1 if the mode did not run
 * @param metadataBytes the part of {@code hostBytes} that is the engine's metadata, or kernel KSM's as the
 *                      kernel counts it (0 where there is none; -1 where it was not measured)
 * @param savedPages    guest pages that hold no frame of their own at the end
 * @param at99          when 99% of the final sharing was reached (seconds, CPU-seconds, pages), or null
 *                      if the mode is not timed or did not reach it
 * @param timedOut      true if the run stopped at {@code --ksm-timeout-seconds} before it settled
 * @param limitSeconds  for a run that timed out, the seconds it ran; else 0
 * @param note          what the reader must know about this figure, or null
 * @param kernel        for the engine's modes, (a) to (c), what the kernel said of the same memory in the same
 *                      run ({@link KernelView}); null for the others
 */
record ModeResult(Mode mode, int guests, long hostBytes, long metadataBytes, long savedPages,
        SharingTrace.Point at99, boolean timedOut, double limitSeconds, String note, KernelView kernel) {

    /** A result without the kernel's view: kernel KSM's, whose figures are the kernel's own, and the models'. */
    ModeResult(Mode mode, int guests, long hostBytes, long metadataBytes, long savedPages, SharingTrace.Point at99,
            boolean timedOut, double limitSeconds, String note) {
        this(mode, guests, hostBytes, metadataBytes, savedPages, at99, timedOut, limitSeconds, note, null);
    }

    /** This result with {@code text} as its note. */
    ModeResult withNote(String text) {
        return new ModeResult(mode, guests, hostBytes, metadataBytes, savedPages, at99, timedOut, limitSeconds, text,
                kernel);
    }

    /** This result with {@code view} as what the kernel said of it. */
    ModeResult withKernel(KernelView view) {
        return new ModeResult(mode, guests, hostBytes, metadataBytes, savedPages, at99, timedOut, limitSeconds, note,
                view);
    }

    /** A mode that did not run at this N, with the reason. */
    static ModeResult skipped(Mode mode, int guests, String note) {
        return new ModeResult(mode, guests, -1, 0, 0, null, false, 0, note);
    }

    /** A mode measured without a timeline: (a) and (e). */
    static ModeResult untimed(Mode mode, int guests, long hostBytes, long savedPages, String note) {
        return new ModeResult(mode, guests, hostBytes, 0, savedPages, null, false, 0, note);
    }

    boolean ran() {
        return hostBytes >= 0;
    }

    double hostMib() {
        return hostBytes / (double) (1 << 20);
    }
}
