package io.samepage.kvm;

import io.samepage.linux.KvmCalls;

/**
 * {@code /dev/kvm}, open: checks the API version and capabilities and creates VMs.
 *
 * <p>{@link #open()} refuses a KVM without API version 12 or without {@link KvmCapability#USER_MEMORY}
 * and {@link KvmCapability#SYNC_MMU}: guest memory here is ordinary mapped process memory, and a merge
 * or break remaps it under a running guest, which only a KVM that follows host mapping changes sees.
 *
 * <p>Thread safe; {@link #close()} after the last use (VMs created from it stay usable).
 */
public final class Kvm implements AutoCloseable {

    /** The device every Linux KVM host has. */
    public static final String DEVICE = "/dev/kvm";

    private final int fd;
    private final int vcpuMmapSize;
    private volatile boolean closed;

    private Kvm(int fd, int vcpuMmapSize) {
        this.fd = fd;
        this.vcpuMmapSize = vcpuMmapSize;
    }

    /**
     * Opens {@link #DEVICE} and checks it.
     *
     * @throws KvmException {@link KvmException.Kind#UNAVAILABLE} saying what is missing
     */
    public static Kvm open() {
        String unavailable = KvmCalls.unavailableReason();
        if (unavailable != null) {
            throw new KvmException(KvmException.Kind.UNAVAILABLE, unavailable);
        }
        int fd = KvmCalls.open(DEVICE);
        if (fd < 0) {
            String why = switch (-fd) {
                case 2 -> " does not exist: load the kvm module (kvm_intel or kvm_amd), or enable nested "
                        + "virtualization for this VM";
                case 1, 13 -> ": permission denied: run as root, or add the user to the group that owns it";
                default -> " cannot be opened: errno " + -fd;
            };
            throw new KvmException(KvmException.Kind.UNAVAILABLE, -fd, DEVICE + why);
        }
        try {
            int version = KvmCalls.apiVersion(fd);
            if (version < 0) {
                throw new KvmException(KvmException.Kind.UNAVAILABLE, -version, DEVICE + " is not a KVM device: "
                        + "KVM_GET_API_VERSION failed with errno " + -version);
            }
            if (version != KvmCalls.API_VERSION) {
                throw new KvmException(KvmException.Kind.UNAVAILABLE, DEVICE + " speaks KVM API version "
                        + version + ", not " + KvmCalls.API_VERSION + ": this is not the KVM this code knows");
            }
            for (KvmCapability required : new KvmCapability[] {KvmCapability.USER_MEMORY, KvmCapability.SYNC_MMU}) {
                if (KvmCalls.checkExtension(fd, required.number()) <= 0) {
                    throw new KvmException(KvmException.Kind.UNAVAILABLE, DEVICE + " lacks KVM_CAP_" + required
                            + ", which mapped guest memory needs");
                }
            }
            int mmapSize = KvmCalls.vcpuMmapSize(fd);
            if (mmapSize < 0) {
                throw KvmException.refused("KVM_GET_VCPU_MMAP_SIZE", mmapSize);
            }
            return new Kvm(fd, mmapSize);
        } catch (KvmException e) {
            KvmCalls.close(fd);
            throw e;
        }
    }

    /**
     * Null if a VM can be created here, else why not, in one line: for tests and self-checks that skip
     * rather than fail where there is no usable KVM.
     */
    public static String unavailableReason() {
        try (Kvm kvm = open()) {
            kvm.createVm().close();
            return null;
        } catch (KvmException e) {
            return e.getMessage();
        }
    }

    /** The KVM API version: always {@value KvmCalls#API_VERSION} here, {@link #open()} checked it. */
    public int apiVersion() {
        return KvmCalls.apiVersion(fd());
    }

    /** 0 if absent; positive if present, often a count (slots, vCPUs). */
    public int checkExtension(KvmCapability capability) {
        int answer = KvmCalls.checkExtension(fd(), capability.number());
        if (answer < 0) {
            throw KvmException.refused("KVM_CHECK_EXTENSION(" + capability + ")", answer);
        }
        return answer;
    }

    public boolean hasExtension(KvmCapability capability) {
        return checkExtension(capability) > 0;
    }

    /** A new VM with no memory and no vCPUs. */
    public KvmVm createVm() {
        int vmFd = KvmCalls.createVm(fd());
        if (vmFd < 0) {
            throw KvmException.refused("KVM_CREATE_VM", vmFd);
        }
        return new KvmVm(vmFd, vcpuMmapSize);
    }

    @Override
    public void close() {
        if (!closed) {
            closed = true;
            KvmCalls.close(fd);
        }
    }

    private int fd() {
        if (closed) {
            throw new IllegalStateException(DEVICE + " is closed");
        }
        return fd;
    }
}
