package io.samepage.linux;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.StructLayout;
import java.lang.foreign.SymbolLookup;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.lang.invoke.VarHandle;
import java.util.Locale;
import java.util.Set;

/**
 * The C library calls behind {@link KvmCalls} and {@link MemfdCalls}: each wrapper passes its arguments
 * through unchanged and returns the call's result, or {@code -errno} where the call failed (errno is
 * captured by the linker right after the call, so nothing in between can change it).
 *
 * <p>The wrappers themselves check nothing: what makes each call safe is what its caller passes, and
 * every caller in this package says why at its call site. Nothing outside this package may call them.
 *
 * <p>Thread safe: every thread has its own errno capture buffer.
 */
// Restricted FFM methods are this package's purpose; each caller says why its arguments are safe.
@SuppressWarnings("restricted")
final class Libc {

    static final int PROT_NONE = 0x0;
    static final int PROT_READ = 0x1;
    static final int PROT_WRITE = 0x2;
    static final int MAP_SHARED = 0x01;
    static final int MAP_PRIVATE = 0x02;
    static final int MAP_FIXED = 0x10;
    static final int MAP_ANONYMOUS = 0x20;
    static final int MAP_NORESERVE = 0x4000;
    static final int O_RDWR = 0x2;
    static final int O_CLOEXEC = 0x80000;
    static final int EINTR = 4;
    static final int EFAULT = 14;
    static final long MAP_FAILED = -1L;

    private static final Set<String> ARCHS = Set.of("amd64", "x86_64", "aarch64", "riscv64");
    private static final StructLayout CAPTURE_LAYOUT = Linker.Option.captureStateLayout();
    private static final VarHandle ERRNO = CAPTURE_LAYOUT.varHandle(MemoryLayout.PathElement.groupElement("errno"));
    private static final ThreadLocal<MemorySegment> CAPTURE =
            ThreadLocal.withInitial(() -> Arena.ofAuto().allocate(CAPTURE_LAYOUT));

    private static final MethodHandle OPEN;
    private static final MethodHandle CLOSE;
    private static final MethodHandle IOCTL_POINTER;
    private static final MethodHandle IOCTL_VALUE;
    private static final MethodHandle MMAP;
    private static final MethodHandle MUNMAP;
    private static final MethodHandle MPROTECT;
    private static final MethodHandle MEMFD_CREATE;
    private static final MethodHandle FTRUNCATE;
    private static final MethodHandle FALLOCATE;
    private static final MethodHandle FSTAT;
    private static final String UNAVAILABLE;

    static {
        MethodHandle[] handles = new MethodHandle[11];
        String unavailable = null;
        String os = System.getProperty("os.name", "").toLowerCase(Locale.ROOT);
        String arch = System.getProperty("os.arch", "").toLowerCase(Locale.ROOT);
        if (!os.startsWith("linux") || !ARCHS.contains(arch)) {
            unavailable = "KVM and memfd frames need Linux on x86-64, AArch64 or RISC-V 64, not " + os + "/" + arch;
        } else {
            try {
                Linker linker = Linker.nativeLinker();
                SymbolLookup libc = linker.defaultLookup();
                Linker.Option errno = Linker.Option.captureCallState("errno");
                ValueLayout i = ValueLayout.JAVA_INT;
                ValueLayout l = ValueLayout.JAVA_LONG;
                ValueLayout a = ValueLayout.ADDRESS;
                // mmap, munmap and mprotect take and return addresses as JAVA_LONG: on the 64-bit ABIs
                // this links on a pointer and a long travel in the same registers, and the callers work
                // with raw addresses of mappings they own, never with segments of someone else's memory.
                handles[0] = linker.downcallHandle(libc.findOrThrow("open"), FunctionDescriptor.of(i, a, i), errno);
                handles[1] = linker.downcallHandle(libc.findOrThrow("close"), FunctionDescriptor.of(i, i), errno);
                handles[2] = linker.downcallHandle(libc.findOrThrow("ioctl"), FunctionDescriptor.of(i, i, l, a),
                        errno, Linker.Option.firstVariadicArg(2));
                handles[3] = linker.downcallHandle(libc.findOrThrow("ioctl"), FunctionDescriptor.of(i, i, l, l),
                        errno, Linker.Option.firstVariadicArg(2));
                handles[4] = linker.downcallHandle(libc.findOrThrow("mmap"), FunctionDescriptor.of(l, l, l, i, i, i, l),
                        errno);
                handles[5] = linker.downcallHandle(libc.findOrThrow("munmap"), FunctionDescriptor.of(i, l, l), errno);
                handles[6] = linker.downcallHandle(libc.findOrThrow("mprotect"), FunctionDescriptor.of(i, l, l, i),
                        errno);
                handles[7] = linker.downcallHandle(libc.findOrThrow("memfd_create"), FunctionDescriptor.of(i, a, i),
                        errno);
                handles[8] = linker.downcallHandle(libc.findOrThrow("ftruncate"), FunctionDescriptor.of(i, i, l), errno);
                handles[9] = linker.downcallHandle(libc.findOrThrow("fallocate"), FunctionDescriptor.of(i, i, i, l, l),
                        errno);
                handles[10] = linker.downcallHandle(libc.findOrThrow("fstat"), FunctionDescriptor.of(i, i, a), errno);
            } catch (RuntimeException | Error e) {
                unavailable = "the C library's KVM and memfd calls could not be linked (" + e.getMessage()
                        + "); run java with --enable-native-access=ALL-UNNAMED";
            }
        }
        OPEN = handles[0];
        CLOSE = handles[1];
        IOCTL_POINTER = handles[2];
        IOCTL_VALUE = handles[3];
        MMAP = handles[4];
        MUNMAP = handles[5];
        MPROTECT = handles[6];
        MEMFD_CREATE = handles[7];
        FTRUNCATE = handles[8];
        FALLOCATE = handles[9];
        FSTAT = handles[10];
        UNAVAILABLE = unavailable;
    }

    private Libc() {
    }

    /** Null if these calls can be made here, else why not. */
    static String unavailableReason() {
        return UNAVAILABLE;
    }

    static int open(MemorySegment path, int flags) {
        try {
            // Safe: path is a NUL-terminated string the caller allocated and keeps alive for the call.
            return result((int) OPEN.invokeExact(capture(), path, flags));
        } catch (Throwable t) {
            throw failed("open", t);
        }
    }

    static int close(int fd) {
        try {
            // Safe: closes a descriptor the caller owns and never uses again.
            return result((int) CLOSE.invokeExact(capture(), fd));
        } catch (Throwable t) {
            throw failed("close", t);
        }
    }

    /** {@code ioctl(fd, request, pointer)}: the kernel reads or writes the struct at {@code arg}. */
    static int ioctl(int fd, long request, MemorySegment arg) {
        try {
            // Safe when the caller passes a segment at least as large as the request's struct (each
            // caller in KvmCalls allocates exactly the size <linux/kvm.h> gives), alive for the call.
            return result((int) IOCTL_POINTER.invokeExact(capture(), fd, request, arg));
        } catch (Throwable t) {
            throw failed("ioctl", t);
        }
    }

    /** {@code ioctl(fd, request, value)}: the argument is a number, not a pointer. */
    static int ioctl(int fd, long request, long value) {
        try {
            // Safe: the kernel takes value as a number for the requests callers pass here; no memory is touched.
            return result((int) IOCTL_VALUE.invokeExact(capture(), fd, request, value));
        } catch (Throwable t) {
            throw failed("ioctl", t);
        }
    }

    /** The mapped address, or {@code -errno}. */
    static long mmap(long address, long length, int prot, int flags, int fd, long offset) {
        try {
            // Safe when the caller's address, with MAP_FIXED, lies inside a range it reserved itself
            // (MemfdCalls checks this): MAP_FIXED then replaces only memory it owns.
            long mapped = (long) MMAP.invokeExact(capture(), address, length, prot, flags, fd, offset);
            return mapped == MAP_FAILED ? -errno() : mapped;
        } catch (Throwable t) {
            throw failed("mmap", t);
        }
    }

    static int munmap(long address, long length) {
        try {
            // Safe when the caller unmaps exactly what it mapped, after its last access (an arena cleanup).
            return result((int) MUNMAP.invokeExact(capture(), address, length));
        } catch (Throwable t) {
            throw failed("munmap", t);
        }
    }

    static int mprotect(long address, long length, int prot) {
        try {
            // Safe when the range is the caller's own mapping and no Java code writes it while read-only.
            return result((int) MPROTECT.invokeExact(capture(), address, length, prot));
        } catch (Throwable t) {
            throw failed("mprotect", t);
        }
    }

    static int memfdCreate(MemorySegment name, int flags) {
        try {
            // Safe: name is a NUL-terminated string the caller keeps alive for the call.
            return result((int) MEMFD_CREATE.invokeExact(capture(), name, flags));
        } catch (Throwable t) {
            throw failed("memfd_create", t);
        }
    }

    static int ftruncate(int fd, long length) {
        try {
            // Safe: changes only the size of a file the caller owns; no memory is touched.
            return result((int) FTRUNCATE.invokeExact(capture(), fd, length));
        } catch (Throwable t) {
            throw failed("ftruncate", t);
        }
    }

    static int fallocate(int fd, int mode, long offset, long length) {
        try {
            // Safe: changes only blocks of a file the caller owns; mappings of a punched range read zeros.
            return result((int) FALLOCATE.invokeExact(capture(), fd, mode, offset, length));
        } catch (Throwable t) {
            throw failed("fallocate", t);
        }
    }

    static int fstat(int fd, MemorySegment stat) {
        try {
            // Safe when stat is at least sizeof(struct stat) (144 on x86-64 and AArch64), alive for the call.
            return result((int) FSTAT.invokeExact(capture(), fd, stat));
        } catch (Throwable t) {
            throw failed("fstat", t);
        }
    }

    private static MemorySegment capture() {
        return CAPTURE.get();
    }

    private static int errno() {
        return (int) ERRNO.get(CAPTURE.get(), 0L);
    }

    private static int result(int returned) {
        return returned == -1 ? -errno() : returned;
    }

    private static IllegalStateException failed(String call, Throwable t) {
        return new IllegalStateException(call + " downcall failed", t);
    }
}
