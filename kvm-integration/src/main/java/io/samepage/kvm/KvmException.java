package io.samepage.kvm;

/**
 * The error type of running guests under KVM over mapped memory ({@link Kvm}, {@link KvmVm},
 * {@link Vcpu}, {@link MemfdFrames}, {@link MappedGuestMemory}): its message is what an operator needs
 * to act, its {@link Kind} what a program needs to decide, its {@link #errno()} the kernel's answer.
 */
public final class KvmException extends RuntimeException {

    private static final long serialVersionUID = 1L;

    /** Why the call failed. */
    public enum Kind {
        /**
         * KVM cannot be used here: no {@code /dev/kvm}, no permission, a foreign API version, a missing
         * capability, or no native access. Nothing was created.
         */
        UNAVAILABLE,
        /** The kernel refused a call on a VM, vCPU, memfd or mapping; {@link #errno()} says how. */
        REFUSED,
        /**
         * Mapping one more guest page could exceed {@code vm.max_map_count}; nothing was mapped. The
         * message says how many mappings are in use and how to raise the limit.
         */
        MAPPING_LIMIT,
        /**
         * A guest access reached host memory with an uncorrectable hardware error: {@code KVM_RUN} failed
         * with {@code EHWPOISON} ({@link #errno()} 133). Running the vCPU again retries the access and
         * fails again; the message names the guest physical address if KVM reported it.
         */
        HARDWARE_MEMORY_ERROR
    }

    private final Kind kind;
    private final int errno;

    KvmException(Kind kind, String message) {
        this(kind, 0, message);
    }

    KvmException(Kind kind, int errno, String message) {
        super(message, null);
        this.kind = kind;
        this.errno = errno;
    }

    /** Thrown for a call that returned {@code -errno}: names the call, the errno and what to check. */
    static KvmException refused(String call, int negativeErrno) {
        int errno = -negativeErrno;
        String hint = switch (errno) {
            case 1, 13 -> " (permission denied: run as root, or join the group that owns /dev/kvm)";
            case 12 -> " (out of memory or address space)";
            case 14 -> " (a guest access the host mapping could not satisfy)";
            case 22 -> " (invalid argument: a misaligned or overlapping region, or an unsupported flag)";
            case 24 -> " (too many open files: raise ulimit -n)";
            default -> "";
        };
        return new KvmException(Kind.REFUSED, errno, call + " failed with errno " + errno + hint);
    }

    /** {@link #refused(String, int)}, then what the failure left behind ({@code outcome}). */
    static KvmException refused(String call, int negativeErrno, String outcome) {
        KvmException refused = refused(call, negativeErrno);
        return new KvmException(Kind.REFUSED, refused.errno, refused.getMessage() + "; " + outcome);
    }

    /**
     * Thrown for {@code call} failing with {@code EHWPOISON}: names the guest physical range
     * {@code [physAddr, + size)} if KVM reported it ({@code physAddr} -1 if not).
     */
    static KvmException hardwareMemoryError(String call, int errno, long physAddr, long size) {
        String where = physAddr < 0 ? "a guest page KVM did not name"
                : "guest physical 0x" + Long.toHexString(physAddr) + ".."
                + "0x" + Long.toHexString(physAddr + Math.max(size, 1) - 1);
        return new KvmException(Kind.HARDWARE_MEMORY_ERROR, errno, call + " failed with errno " + errno
                + " (EHWPOISON): the host memory behind " + where + " has an uncorrectable hardware error; the "
                + "guest cannot go on at that address");
    }

    public Kind kind() {
        return kind;
    }

    /**
     * The kernel's errno for {@link Kind#REFUSED} and {@link Kind#HARDWARE_MEMORY_ERROR} (and an
     * {@code open} refused as unavailable), else 0.
     */
    public int errno() {
        return errno;
    }
}
