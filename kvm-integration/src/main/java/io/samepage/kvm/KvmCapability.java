package io.samepage.kvm;

/**
 * The KVM capabilities this module asks about ({@code KVM_CAP_*} of {@code <linux/kvm.h>}), for
 * {@link Kvm#checkExtension} and {@link Kvm#hasExtension}.
 */
public enum KvmCapability {
    /** {@code KVM_SET_USER_MEMORY_REGION}: guest memory is ordinary process memory. Required. */
    USER_MEMORY(3),
    /** The recommended number of vCPUs per VM. */
    NR_VCPUS(9),
    /** How many memory slots a VM may have. */
    NR_MEMSLOTS(10),
    /**
     * KVM follows changes to the host mappings (MMU notifiers). Required: a merge or break remaps a
     * guest page under a running guest, and the guest must see the new frame.
     */
    SYNC_MMU(16),
    /** The most vCPUs a VM may have. */
    MAX_VCPUS(66),
    /** Slots flagged read-only: guest writes to them exit as MMIO. */
    READONLY_MEM(81),
    /** Linux 6.8 and later: a guest access that fails with EFAULT says where, as a memory-fault exit. */
    MEMORY_FAULT_INFO(232);

    private final int number;

    KvmCapability(int number) {
        this.number = number;
    }

    /** The {@code KVM_CAP_*} number. */
    public int number() {
        return number;
    }
}
