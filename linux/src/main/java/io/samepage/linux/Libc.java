package io.samepage.linux;

import static java.lang.foreign.FunctionDescriptor.of;

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
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;

/**
 * The binding table: every C library function this package calls is bound here, once, and nowhere
 * else. Each wrapper passes its arguments through unchanged and returns the call's result, or
 * {@code -errno} where the call failed (errno is captured by the linker right after the call, so
 * nothing in between can change it); the few that differ say so.
 *
 * <p>The wrappers check nothing: what makes each call safe is what its caller passes, and every
 * caller in this package says why at its call site; what a wrapper requires of its caller is written
 * beside its downcall. Nothing outside this package may call them.
 *
 * <p>Bindings are made only on the ABI {@link Abi} describes, whose constants callers use. Shapes (a segment where memory must outlive the call, a {@code long} for a caller's own mappings),
 * availability (each function bound on first use, and each may be missing, for a reason recorded for
 * {@link #unavailable}) and thread safety (the calling thread's errno buffer, or the caller's own from
 * {@link #newCapture}) are the package documentation's.
 */
// Restricted FFM methods are this package's purpose; each caller says why its arguments are safe.
@SuppressWarnings("restricted")
final class Libc {

    private static final long MAP_FAILED = -1L;

    private static final Linker.Option VARIADIC_AFTER_2 = Linker.Option.firstVariadicArg(2);
    private static final ValueLayout I = ValueLayout.JAVA_INT;
    private static final ValueLayout L = ValueLayout.JAVA_LONG;
    private static final ValueLayout A = ValueLayout.ADDRESS;

    /** Errno capture, set up by the first function that captures it (isatty alone needs none of it). */
    private static final class Errno {
        static final StructLayout LAYOUT = Linker.Option.captureStateLayout();
        static final VarHandle VALUE = LAYOUT.varHandle(MemoryLayout.PathElement.groupElement("errno"));
        static final Linker.Option CAPTURED = Linker.Option.captureCallState("errno");
        static final ThreadLocal<MemorySegment> PER_THREAD =
                ThreadLocal.withInitial(() -> Arena.ofAuto().allocate(LAYOUT));
    }

    /** Why each function that has no binding has none; the holders below fill it as they initialize. */
    private static final Map<String, String> UNBOUND = new ConcurrentHashMap<>();
    private static final Linker LINKER = linker();

    // One holder class per function: the JVM binds it when a caller first needs it (each link costs
    // milliseconds), exactly once, and the JIT still treats the handle as a constant.

    // int open(const char *path, int flags, ... /* mode_t mode */): the mode is always passed, so the
    // call follows the variadic convention exactly.
    private static final class Open { static final MethodHandle H = linux("open", of(I, A, I, I), VARIADIC_AFTER_2); }
    private static final class Close { static final MethodHandle H = linux("close", of(I, I)); }
    // int ioctl(int fd, unsigned long request, ...): a pointer for some requests, a number for others.
    private static final class Ioctl {
        static final MethodHandle POINTER = linux("ioctl", of(I, I, L, A), VARIADIC_AFTER_2);
        static final MethodHandle VALUE = linux("ioctl", of(I, I, L, L), VARIADIC_AFTER_2);
    }
    // void *mmap(void *addr, size_t length, int prot, int flags, int fd, off_t offset)
    private static final class Mmap { static final MethodHandle H = linux("mmap", of(L, L, L, I, I, I, L)); }
    // int munmap(void *addr, size_t length)
    private static final class Munmap { static final MethodHandle H = linux("munmap", of(I, L, L)); }
    // int mprotect(void *addr, size_t length, int prot)
    private static final class Mprotect { static final MethodHandle H = linux("mprotect", of(I, L, L, I)); }
    // int madvise(void *addr, size_t length, int advice): a segment, so its arena is held for the call.
    private static final class Madvise { static final MethodHandle H = linux("madvise", of(I, A, L, I)); }
    // int mincore(void *addr, size_t length, unsigned char *vec): the range by number, the vector a segment.
    private static final class Mincore { static final MethodHandle H = linux("mincore", of(I, L, L, A)); }
    // int memfd_create(const char *name, unsigned int flags)
    private static final class MemfdCreate { static final MethodHandle H = linux("memfd_create", of(I, A, I)); }
    // int ftruncate(int fd, off_t length)
    private static final class Ftruncate { static final MethodHandle H = linux("ftruncate", of(I, I, L)); }
    // int fallocate(int fd, int mode, off_t offset, off_t length)
    private static final class Fallocate { static final MethodHandle H = linux("fallocate", of(I, I, I, L, L)); }
    // int fstat(int fd, struct stat *st)
    private static final class Fstat { static final MethodHandle H = linux("fstat", of(I, I, A)); }
    // int posix_fadvise(int fd, off_t offset, off_t len, int advice): returns the error number itself.
    private static final class PosixFadvise {
        static final MethodHandle H = linuxNoErrno("posix_fadvise", of(I, I, L, L, I));
    }
    // int getpagesize(void): cannot fail.
    private static final class Getpagesize { static final MethodHandle H = linuxNoErrno("getpagesize", of(I)); }
    // long sysconf(int name): -1 for an unknown name, and also for "no limit" with errno untouched.
    private static final class Sysconf { static final MethodHandle H = linuxNoErrno("sysconf", of(L, I)); }
    // int pidfd_open(pid_t pid, unsigned int flags): glibc 2.36 and later.
    private static final class PidfdOpen { static final MethodHandle H = linux("pidfd_open", of(I, I, I)); }
    // ssize_t process_madvise(int pidfd, const struct iovec *iov, size_t n, int advice, unsigned int flags):
    // glibc 2.36 and later.
    private static final class ProcessMadvise {
        static final MethodHandle H = linux("process_madvise", of(L, I, A, L, I, I));
    }
    // int socket(int domain, int type, int protocol); int bind(int fd, const struct sockaddr *a, socklen_t n)
    private static final class Socket { static final MethodHandle H = linux("socket", of(I, I, I, I)); }
    private static final class Bind { static final MethodHandle H = linux("bind", of(I, I, A, I)); }
    // ssize_t sendto(int fd, const void *b, size_t n, int flags, const struct sockaddr *to, socklen_t tolen);
    // ssize_t recv(int fd, void *b, size_t n, int flags)
    private static final class Sendto { static final MethodHandle H = linux("sendto", of(L, I, A, L, I, A, I)); }
    private static final class Recv { static final MethodHandle H = linux("recv", of(L, I, A, L, I)); }
    // int renameat2(int olddirfd, const char *old, int newdirfd, const char *new, unsigned int flags):
    // glibc 2.28 and later.
    private static final class Renameat2 { static final MethodHandle H = linux("renameat2", of(I, I, A, I, A, I)); }
    // int isatty(int fd): 1 or 0, the same on every C library, so it is bound on every platform.
    private static final class Isatty { static final MethodHandle H = bind("isatty", of(I, I)); }

    private Libc() {
    }

    /** True if every one of {@code functions} (C names) is bound here; binds each on its first mention. */
    static boolean bound(String... functions) {
        for (String function : functions) {
            if (handle(function) == null) {
                return false;
            }
        }
        return true;
    }

    /** Null if every one of {@code functions} is bound, else why not: "{@code what} need ...". */
    static String unavailable(String what, String... functions) {
        for (String function : functions) {
            if (handle(function) == null) {
                return what + " need " + UNBOUND.get(function);
            }
        }
        return null;
    }

    /** An errno capture buffer in {@code arena}, for a caller that passes its own. */
    static MemorySegment newCapture(Arena arena) {
        return arena.allocate(Errno.LAYOUT);
    }

    static int open(MemorySegment path, int flags) {
        MemorySegment capture = Errno.PER_THREAD.get();
        try {
            // Safe when path is a NUL-terminated string the caller keeps alive for the call. Mode 0:
            // callers never pass O_CREAT.
            return result(capture, (int) Open.H.invokeExact(capture, path, flags, 0));
        } catch (Throwable t) {
            throw failed("open", t);
        }
    }

    static int close(int fd) {
        MemorySegment capture = Errno.PER_THREAD.get();
        try {
            // Safe when the caller owns fd and never uses it again.
            return result(capture, (int) Close.H.invokeExact(capture, fd));
        } catch (Throwable t) {
            throw failed("close", t);
        }
    }

    /** {@code ioctl(fd, request, pointer)}: the kernel reads or writes the struct at {@code arg}. */
    static int ioctl(int fd, long request, MemorySegment arg) {
        MemorySegment capture = Errno.PER_THREAD.get();
        try {
            // Safe when arg is at least as large as the request's struct (each caller in KvmCalls
            // allocates exactly the size <linux/kvm.h> gives); the downcall keeps it alive for the call.
            return result(capture, (int) Ioctl.POINTER.invokeExact(capture, fd, request, arg));
        } catch (Throwable t) {
            throw failed("ioctl", t);
        }
    }

    /** {@code ioctl(fd, request, value)}: the argument is a number, not a pointer. */
    static int ioctl(int fd, long request, long value) {
        MemorySegment capture = Errno.PER_THREAD.get();
        try {
            // Safe when the kernel takes value as a number for the request; then no memory is touched.
            return result(capture, (int) Ioctl.VALUE.invokeExact(capture, fd, request, value));
        } catch (Throwable t) {
            throw failed("ioctl", t);
        }
    }

    /** The mapped address, or {@code -errno}. */
    static long mmap(long address, long length, int prot, int flags, int fd, long offset) {
        MemorySegment capture = Errno.PER_THREAD.get();
        try {
            // Safe when address is 0 (the kernel picks a free range and replaces nothing) or, with
            // MAP_FIXED, lies inside a range the caller reserved itself (MemfdCalls checks this).
            long mapped = (long) Mmap.H.invokeExact(capture, address, length, prot, flags, fd, offset);
            return mapped == MAP_FAILED ? -errno(capture) : mapped;
        } catch (Throwable t) {
            throw failed("mmap", t);
        }
    }

    static int munmap(long address, long length) {
        MemorySegment capture = Errno.PER_THREAD.get();
        try {
            // Safe when the caller unmaps what it mapped, after its last access (an arena cleanup), or trims
            // spare pages of a mapping no segment names yet (NativeMemory.reserve with a block offset).
            return result(capture, (int) Munmap.H.invokeExact(capture, address, length));
        } catch (Throwable t) {
            throw failed("munmap", t);
        }
    }

    static int mprotect(long address, long length, int prot) {
        MemorySegment capture = Errno.PER_THREAD.get();
        try {
            // Safe when the range is the caller's own mapping and no Java code writes it while read-only.
            return result(capture, (int) Mprotect.H.invokeExact(capture, address, length, prot));
        } catch (Throwable t) {
            throw failed("mprotect", t);
        }
    }

    /** {@code madvise} over exactly {@code range}: its address and its length. */
    static int madvise(MemorySegment range, int advice) {
        MemorySegment capture = Errno.PER_THREAD.get();
        try {
            // Safe when range lies inside a mapping the caller owns. The length is the segment's own, so
            // the advice covers nothing the segment does not; the downcall holds range's arena open for
            // the call, so a concurrent close throws here instead of the kernel advising freed addresses.
            return result(capture, (int) Madvise.H.invokeExact(capture, range, range.byteSize(), advice));
        } catch (Throwable t) {
            throw failed("madvise", t);
        }
    }

    static int mincore(long address, long length, MemorySegment vector) {
        MemorySegment capture = Errno.PER_THREAD.get();
        try {
            // Safe when [address, + length) is the caller's own mapping (mincore reads page tables, not
            // the pages) and vector holds at least one byte per page of it, alive for the call.
            return result(capture, (int) Mincore.H.invokeExact(capture, address, length, vector));
        } catch (Throwable t) {
            throw failed("mincore", t);
        }
    }

    static int memfdCreate(MemorySegment name, int flags) {
        MemorySegment capture = Errno.PER_THREAD.get();
        try {
            // Safe when name is a NUL-terminated string the caller keeps alive for the call.
            return result(capture, (int) MemfdCreate.H.invokeExact(capture, name, flags));
        } catch (Throwable t) {
            throw failed("memfd_create", t);
        }
    }

    static int ftruncate(int fd, long length) {
        MemorySegment capture = Errno.PER_THREAD.get();
        try {
            // Safe: changes only the size of a file the caller owns; no memory is touched.
            return result(capture, (int) Ftruncate.H.invokeExact(capture, fd, length));
        } catch (Throwable t) {
            throw failed("ftruncate", t);
        }
    }

    static int fallocate(int fd, int mode, long offset, long length) {
        MemorySegment capture = Errno.PER_THREAD.get();
        try {
            // Safe: changes only blocks of a file the caller owns; mappings of a punched range read zeros.
            return result(capture, (int) Fallocate.H.invokeExact(capture, fd, mode, offset, length));
        } catch (Throwable t) {
            throw failed("fallocate", t);
        }
    }

    static int fstat(int fd, MemorySegment stat) {
        MemorySegment capture = Errno.PER_THREAD.get();
        try {
            // Safe when stat is at least sizeof(struct stat) (144 on x86-64 and AArch64), alive for the call.
            return result(capture, (int) Fstat.H.invokeExact(capture, fd, stat));
        } catch (Throwable t) {
            throw failed("fstat", t);
        }
    }

    /** 0, or {@code -error}: {@code posix_fadvise} returns its error number instead of setting errno. */
    static int posixFadvise(int fd, long offset, long length, int advice) {
        try {
            // Safe: advice about a file's page cache; no memory of this process crosses the boundary.
            return -(int) PosixFadvise.H.invokeExact(fd, offset, length, advice);
        } catch (Throwable t) {
            throw failed("posix_fadvise", t);
        }
    }

    /** The host page size; cannot fail. */
    static int getpagesize() {
        try {
            // Safe: takes nothing, returns an int.
            return (int) Getpagesize.H.invokeExact();
        } catch (Throwable t) {
            throw failed("getpagesize", t);
        }
    }

    /** The value, or -1 (no errno: -1 also means "no limit", so errno alone would not tell). */
    static long sysconf(int name) {
        try {
            // Safe: an int in, a long out; no memory crosses the boundary.
            return (long) Sysconf.H.invokeExact(name);
        } catch (Throwable t) {
            throw failed("sysconf", t);
        }
    }

    /** 1 if {@code fd} is a terminal, else 0 (closed, or not a terminal; no errno). */
    static int isatty(int fd) {
        try {
            // Safe: an int in, an int out; nothing is allocated or freed.
            return (int) Isatty.H.invokeExact(fd);
        } catch (Throwable t) {
            throw failed("isatty", t);
        }
    }

    static int pidfdOpen(int pid, int flags) {
        MemorySegment capture = Errno.PER_THREAD.get();
        try {
            // Safe: two integers in, a new descriptor out, which the caller owns.
            return result(capture, (int) PidfdOpen.H.invokeExact(capture, pid, flags));
        } catch (Throwable t) {
            throw failed("pidfd_open", t);
        }
    }

    /** Bytes advised, or {@code -errno}; errno lands in {@code capture}, the caller's buffer. */
    static long processMadvise(MemorySegment capture, int pidfd, MemorySegment iovecs, long count, int advice,
                               int flags) {
        try {
            // Safe when iovecs holds count iovecs, each naming a range of a mapping the caller owns.
            // The downcall holds iovecs' arena open for the call: callers allocate it in the arena of
            // the memory it names, so that memory stays mapped while the kernel works on it.
            return result(capture, (long) ProcessMadvise.H.invokeExact(capture, pidfd, iovecs, count, advice, flags));
        } catch (Throwable t) {
            throw failed("process_madvise", t);
        }
    }

    static int socket(int domain, int type, int protocol) {
        MemorySegment capture = Errno.PER_THREAD.get();
        try {
            // Safe: three integers in, a new descriptor out, which the caller owns.
            return result(capture, (int) Socket.H.invokeExact(capture, domain, type, protocol));
        } catch (Throwable t) {
            throw failed("socket", t);
        }
    }

    static int bind(int fd, MemorySegment address) {
        MemorySegment capture = Errno.PER_THREAD.get();
        try {
            // Safe when address is a sockaddr of its own byteSize (the length passed), alive for the call.
            return result(capture, (int) Bind.H.invokeExact(capture, fd, address, (int) address.byteSize()));
        } catch (Throwable t) {
            throw failed("bind", t);
        }
    }

    /** Bytes sent, or {@code -errno}. */
    static long sendto(int fd, MemorySegment message, int flags, MemorySegment to) {
        MemorySegment capture = Errno.PER_THREAD.get();
        try {
            // Safe: the kernel reads message and to, each exactly its segment's byteSize, alive for the call.
            return result(capture, (long) Sendto.H.invokeExact(capture, fd, message, message.byteSize(), flags, to,
                    (int) to.byteSize()));
        } catch (Throwable t) {
            throw failed("sendto", t);
        }
    }

    /** Bytes received, or {@code -errno}. */
    static long recv(int fd, MemorySegment buffer, int flags) {
        MemorySegment capture = Errno.PER_THREAD.get();
        try {
            // Safe: the kernel writes at most buffer's byteSize into it, alive for the call.
            return result(capture, (long) Recv.H.invokeExact(capture, fd, buffer, buffer.byteSize(), flags));
        } catch (Throwable t) {
            throw failed("recv", t);
        }
    }

    static int renameat2(MemorySegment from, MemorySegment to, int flags) {
        MemorySegment capture = Errno.PER_THREAD.get();
        try {
            // Safe when both paths are NUL-terminated strings the caller keeps alive for the call; with
            // AT_FDCWD for both directories, a relative path is read from the working directory.
            return result(capture, (int) Renameat2.H.invokeExact(capture, Abi.AT_FDCWD, from, Abi.AT_FDCWD, to, flags));
        } catch (Throwable t) {
            throw failed("renameat2", t);
        }
    }

    /** The binding of {@code function}, made now if it was not yet; null where it cannot be made. */
    private static MethodHandle handle(String function) {
        return switch (function) {
            case "open" -> Open.H;
            case "close" -> Close.H;
            case "ioctl" -> Ioctl.POINTER == null ? null : Ioctl.VALUE;
            case "mmap" -> Mmap.H;
            case "munmap" -> Munmap.H;
            case "mprotect" -> Mprotect.H;
            case "madvise" -> Madvise.H;
            case "mincore" -> Mincore.H;
            case "memfd_create" -> MemfdCreate.H;
            case "ftruncate" -> Ftruncate.H;
            case "fallocate" -> Fallocate.H;
            case "fstat" -> Fstat.H;
            case "posix_fadvise" -> PosixFadvise.H;
            case "getpagesize" -> Getpagesize.H;
            case "sysconf" -> Sysconf.H;
            case "pidfd_open" -> PidfdOpen.H;
            case "process_madvise" -> ProcessMadvise.H;
            case "socket" -> Socket.H;
            case "bind" -> Bind.H;
            case "sendto" -> Sendto.H;
            case "recv" -> Recv.H;
            case "renameat2" -> Renameat2.H;
            case "isatty" -> Isatty.H;
            default -> throw new IllegalArgumentException("Libc binds no function named " + function);
        };
    }

    private static int errno(MemorySegment capture) {
        return (int) Errno.VALUE.get(capture, 0L);
    }

    private static int result(MemorySegment capture, int returned) {
        return returned == -1 ? -errno(capture) : returned;
    }

    private static long result(MemorySegment capture, long returned) {
        return returned == -1 ? -errno(capture) : returned;
    }

    private static IllegalStateException failed(String call, Throwable t) {
        return new IllegalStateException(call + " downcall failed", t);
    }

    private static Linker linker() {
        try {
            return Linker.nativeLinker();
        } catch (RuntimeException | Error unsupported) {
            return null;
        }
    }

    /** A binding that captures errno, made only on generic 64-bit Linux. */
    private static MethodHandle linux(String name, FunctionDescriptor shape, Linker.Option... options) {
        Linker.Option[] all = new Linker.Option[options.length + 1];
        all[0] = Errno.CAPTURED;
        System.arraycopy(options, 0, all, 1, options.length);
        return linuxNoErrno(name, shape, all);
    }

    private static MethodHandle linuxNoErrno(String name, FunctionDescriptor shape, Linker.Option... options) {
        if (!Abi.GENERIC_LINUX_64) {
            return unbound(name, "Linux on x86-64, AArch64 or RISC-V 64, not " + Abi.OS + "/" + Abi.ARCH);
        }
        return bind(name, shape, options);
    }

    /** Null, with the reason recorded, where the symbol is missing or linking is refused. */
    private static MethodHandle bind(String name, FunctionDescriptor shape, Linker.Option... options) {
        if (LINKER == null) {
            return unbound(name, "a native linker, which this JDK lacks on " + Abi.OS + "/" + Abi.ARCH);
        }
        try {
            SymbolLookup libc = LINKER.defaultLookup();
            Optional<MemorySegment> symbol = libc.find(name);
            if (symbol.isEmpty()) {
                return unbound(name, "the C library's " + name + ", which this one lacks");
            }
            return LINKER.downcallHandle(symbol.get(), shape, options);
        } catch (RuntimeException | Error e) {
            // IllegalCallerException: native access denied (--illegal-native-access=deny).
            return unbound(name, "the C library's " + name + ", which could not be linked (" + e.getMessage()
                    + "); run java with --enable-native-access=io.samepage.linux (module path) or "
                    + "--enable-native-access=ALL-UNNAMED (class path)");
        }
    }

    private static MethodHandle unbound(String name, String reason) {
        UNBOUND.putIfAbsent(name, reason);
        return null;
    }
}
