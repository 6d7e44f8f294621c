package io.samepage.linux;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * The KVM ioctls of {@code <linux/kvm.h>} (API version 12) on x86-64, with the request numbers and
 * struct offsets written out. Each request is {@code _IO/_IOR/_IOW(KVMIO = 0xAE, nr, struct)}: bits
 * 30-31 the direction (1 write, 2 read), 16-29 the struct size, 8-15 {@code 0xAE}, 0-7 the number. The
 * numbers and offsets were checked against a C program built on this machine's kernel headers.
 *
 * <p>Every method returns the ioctl's result, or {@code -errno}. Stateless and thread safe; KVM itself
 * serializes the ioctls of one vCPU.
 */
// Restricted FFM methods are this package's purpose; each call site says why it is safe.
@SuppressWarnings("restricted")
public final class KvmCalls {

    /** The only KVM API version there has ever been; anything else is not KVM as documented. */
    public static final int API_VERSION = 12;

    /** {@code kvm_userspace_memory_region.flags}: log writes to the slot's pages. */
    public static final int MEM_LOG_DIRTY_PAGES = 0x1;
    /** {@code kvm_userspace_memory_region.flags}: guest writes to the slot exit as MMIO. */
    public static final int MEM_READONLY = 0x2;

    /** {@code KVM_EXIT_UNKNOWN}: an exit KVM could not classify; also what x86 KVM writes first when a run begins. */
    public static final int EXIT_UNKNOWN = 0;
    public static final int EXIT_IO = 2;
    public static final int EXIT_HLT = 5;
    public static final int EXIT_MMIO = 6;
    public static final int EXIT_SHUTDOWN = 8;
    public static final int EXIT_FAIL_ENTRY = 9;
    public static final int EXIT_INTERNAL_ERROR = 17;
    /** Linux 6.8 and later: a guest access the host mapping could not satisfy (not in older headers). */
    public static final int EXIT_MEMORY_FAULT = 39;

    /** {@code errno} of a KVM_RUN that could not resolve a guest access through the host mapping. */
    public static final int EFAULT = Abi.EFAULT;
    /** {@code errno} of a KVM_RUN that a signal interrupted before the guest exited. */
    public static final int EINTR = Abi.EINTR;
    /**
     * {@code errno} of a KVM_RUN whose guest access reached host memory with an uncorrectable hardware
     * error (a poisoned page): with {@code EFAULT}, the only errno a memory-fault exit comes with.
     */
    public static final int EHWPOISON = Abi.EHWPOISON;

    private static final long GET_API_VERSION = 0xAE00L;          // _IO(KVMIO, 0x00)
    private static final long CREATE_VM = 0xAE01L;                // _IO(KVMIO, 0x01)
    private static final long CHECK_EXTENSION = 0xAE03L;          // _IO(KVMIO, 0x03)
    private static final long GET_VCPU_MMAP_SIZE = 0xAE04L;       // _IO(KVMIO, 0x04)
    private static final long CREATE_VCPU = 0xAE41L;              // _IO(KVMIO, 0x41)
    private static final long GET_DIRTY_LOG = 0x4010AE42L;        // _IOW(KVMIO, 0x42, struct kvm_dirty_log): 16
    private static final long SET_USER_MEMORY_REGION = 0x4020AE46L; // _IOW(KVMIO, 0x46, ...region): 32
    private static final long RUN = 0xAE80L;                      // _IO(KVMIO, 0x80)
    private static final long SET_REGS = 0x4090AE82L;             // _IOW(KVMIO, 0x82, struct kvm_regs)
    private static final long GET_SREGS = 0x8138AE83L;            // _IOR(KVMIO, 0x83, struct kvm_sregs): 312
    private static final long SET_SREGS = 0x4138AE84L;            // _IOW(KVMIO, 0x84, struct kvm_sregs)

    private static final long REGION_BYTES = 32;
    private static final long DIRTY_LOG_BYTES = 16;
    private static final long REGS_BYTES = 144;
    private static final long SREGS_BYTES = 312;
    private static final long REGS_RIP = 0x80;
    private static final long REGS_RFLAGS = 0x88;
    /** {@code kvm_sregs.cs} is the first {@code kvm_segment}: base u64 at 0, selector u16 at 12. */
    private static final long SREGS_CS_BASE = 0x0;
    private static final long SREGS_CS_SELECTOR = 0xC;
    /** Bit 1 of RFLAGS is reserved and must be set. */
    private static final long RFLAGS_RESERVED = 0x2;

    /** Null if every C library function this class calls is bound, else why not. */
    private static final String LIBC_UNAVAILABLE =
            Libc.unavailable("KVM and memfd frames", "open", "close", "ioctl", "mmap", "munmap");

    private KvmCalls() {
    }

    /** Null if KVM can be called from here, else why not (not Linux on x86-64, or native access denied). */
    public static String unavailableReason() {
        String arch = System.getProperty("os.arch", "");
        if (LIBC_UNAVAILABLE == null && !arch.equals("amd64") && !arch.equals("x86_64")) {
            return "this KVM code knows x86-64's registers and exits only, not " + arch + "'s";
        }
        return LIBC_UNAVAILABLE;
    }

    /** Opens {@code path} (normally {@code /dev/kvm}) read-write, close-on-exec: the fd or {@code -errno}. */
    public static int open(String path) {
        try (Arena arena = Arena.ofConfined()) {
            // Safe: a NUL-terminated copy of path, alive for the call.
            return Libc.open(arena.allocateFrom(path), Abi.O_RDWR | Abi.O_CLOEXEC);
        }
    }

    public static int close(int fd) {
        return Libc.close(fd);
    }

    public static int apiVersion(int kvmFd) {
        // Safe: KVM_GET_API_VERSION takes no argument and touches no memory.
        return Libc.ioctl(kvmFd, GET_API_VERSION, 0L);
    }

    /** 0 if the capability is absent, positive (often a count) if present, {@code -errno} on error. */
    public static int checkExtension(int fd, int capability) {
        // Safe: the argument is the capability number, not a pointer.
        return Libc.ioctl(fd, CHECK_EXTENSION, capability);
    }

    /** A VM's fd (machine type 0, the default) or {@code -errno}. */
    public static int createVm(int kvmFd) {
        // Safe: the argument is the machine type number, not a pointer.
        return Libc.ioctl(kvmFd, CREATE_VM, 0L);
    }

    public static int vcpuMmapSize(int kvmFd) {
        // Safe: takes no argument.
        return Libc.ioctl(kvmFd, GET_VCPU_MMAP_SIZE, 0L);
    }

    public static int createVcpu(int vmFd, int id) {
        // Safe: the argument is the vCPU id, not a pointer.
        return Libc.ioctl(vmFd, CREATE_VCPU, id);
    }

    /**
     * Maps guest physical {@code [guestPhysAddr, + size)} to host {@code [hostAddress, + size)}; size 0
     * deletes the slot. The caller keeps the host range mapped (or reserved) until the slot is deleted
     * or the VM closed: KVM accesses it from then on.
     */
    public static int setUserMemoryRegion(int vmFd, int slot, int flags, long guestPhysAddr, long size,
                                          long hostAddress) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment region = arena.allocate(REGION_BYTES, 8);
            region.set(ValueLayout.JAVA_INT, 0, slot);
            region.set(ValueLayout.JAVA_INT, 4, flags);
            region.set(ValueLayout.JAVA_LONG, 8, guestPhysAddr);
            region.set(ValueLayout.JAVA_LONG, 16, size);
            region.set(ValueLayout.JAVA_LONG, 24, hostAddress);
            // Safe: region is the 32-byte struct the request names, alive for the call; the kernel only
            // reads it. KVM later touches the host range only through the page tables, never by address
            // arithmetic in this process, so an unmapped page there fails KVM_RUN with EFAULT, not us.
            return Libc.ioctl(vmFd, SET_USER_MEMORY_REGION, region);
        }
    }

    /**
     * Copies the slot's dirty bitmap (one bit per page, bit {@code i % 64} of word {@code i / 64}) into
     * {@code bitmap} and clears it in the kernel.
     *
     * @param bitmap at least {@code ceil(pages / 64)} words; the caller checks this
     */
    public static int dirtyLog(int vmFd, int slot, long[] bitmap) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment bits = arena.allocate((long) bitmap.length * Long.BYTES, 8);
            MemorySegment log = arena.allocate(DIRTY_LOG_BYTES, 8);
            log.set(ValueLayout.JAVA_INT, 0, slot);
            log.set(ValueLayout.ADDRESS, 8, bits);
            // Safe: the kernel writes ceil(slot pages / 64) words to bits, which the caller sized to hold
            // them (bitmap.length words), and both segments stay alive for the call.
            int result = Libc.ioctl(vmFd, GET_DIRTY_LOG, log);
            if (result == 0) {
                MemorySegment.copy(bits, ValueLayout.JAVA_LONG, 0, bitmap, 0, bitmap.length);
            }
            return result;
        }
    }

    /**
     * Puts the vCPU in real mode at {@code 0:ip}: code segment base and selector 0, RIP {@code ip},
     * RFLAGS with only the reserved bit. The other segments keep their reset state (base 0).
     */
    public static int setRealMode(int vcpuFd, long ip) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment sregs = arena.allocate(SREGS_BYTES, 8);
            // Safe: sregs is the 312-byte struct kvm_sregs, alive for this and the next call.
            int result = Libc.ioctl(vcpuFd, GET_SREGS, sregs);
            if (result < 0) {
                return result;
            }
            sregs.set(ValueLayout.JAVA_LONG, SREGS_CS_BASE, 0L);
            sregs.set(ValueLayout.JAVA_SHORT, SREGS_CS_SELECTOR, (short) 0);
            // Safe: the same struct, read by the kernel.
            result = Libc.ioctl(vcpuFd, SET_SREGS, sregs);
            if (result < 0) {
                return result;
            }
            MemorySegment regs = arena.allocate(REGS_BYTES, 8);
            regs.set(ValueLayout.JAVA_LONG, REGS_RIP, ip);
            regs.set(ValueLayout.JAVA_LONG, REGS_RFLAGS, RFLAGS_RESERVED);
            // Safe: regs is the 144-byte struct kvm_regs (zeroed by the arena), read by the kernel.
            return Libc.ioctl(vcpuFd, SET_REGS, regs);
        }
    }

    /** Runs the vCPU until it exits to user space: 0, or {@code -errno} ({@code EINTR}: a signal came). */
    public static int run(int vcpuFd) {
        // Safe: KVM_RUN takes no argument; the kernel writes the exit into the vCPU's own kvm_run mapping.
        return Libc.ioctl(vcpuFd, RUN, 0L);
    }

    /**
     * Maps the vCPU's {@code struct kvm_run} ({@code size} from {@link #vcpuMmapSize}) in {@code arena},
     * unmapped when the arena closes; null if the mapping failed.
     */
    public static KvmRunPage mapRunPage(int vcpuFd, int size, Arena arena) {
        // Safe: a null hint never replaces a mapping; the result is checked before any use.
        long address = Libc.mmap(0L, size, Abi.PROT_READ | Abi.PROT_WRITE, Abi.MAP_SHARED, vcpuFd, 0L);
        if (address < 0) {
            return null;
        }
        // Safe: exactly the size just mapped, unmapped by the arena's cleanup after the last access
        // (the arena's close invalidates the segment first).
        MemorySegment run = MemorySegment.ofAddress(address).reinterpret(size, arena,
                unmapped -> Libc.munmap(address, size));
        return new KvmRunPage(run);
    }
}
