package io.samepage.linux;

import java.util.Locale;
import java.util.Set;

/**
 * The Linux ABI this package's calls assume, and its numbers: generic 64-bit Linux (x86-64, AArch64,
 * RISC-V 64), where {@code mmap}'s, {@code open}'s, {@code madvise}'s flags and the errno values below
 * are the same ({@code include/uapi/asm-generic}). {@link Libc} binds its functions only where
 * {@link #GENERIC_LINUX_64} holds, so a caller that has a binding may pass these constants.
 */
final class Abi {

    static final String OS = System.getProperty("os.name", "").toLowerCase(Locale.ROOT);
    static final String ARCH = System.getProperty("os.arch", "").toLowerCase(Locale.ROOT);
    private static final Set<String> ARCHS = Set.of("amd64", "x86_64", "aarch64", "riscv64");
    /** Whether this is Linux on one of the architectures whose constants these are. */
    static final boolean GENERIC_LINUX_64 = OS.startsWith("linux") && ARCHS.contains(ARCH);

    static final int PROT_NONE = 0x0;
    static final int PROT_READ = 0x1;
    static final int PROT_WRITE = 0x2;
    static final int MAP_SHARED = 0x01;
    static final int MAP_PRIVATE = 0x02;
    static final int MAP_FIXED = 0x10;
    static final int MAP_ANONYMOUS = 0x20;
    static final int MAP_NORESERVE = 0x4000;
    /** Linux 4.17: like {@code MAP_FIXED}, but fails with {@code EEXIST} instead of replacing a mapping. */
    static final int MAP_FIXED_NOREPLACE = 0x100000;
    static final int O_RDONLY = 0x0;
    static final int O_RDWR = 0x2;
    static final int O_CLOEXEC = 0x80000;
    /** {@code *at} calls: a relative path is read from the working directory. */
    static final int AT_FDCWD = -100;
    /** include/uapi/asm-generic/mman-common.h */
    static final int MADV_DONTNEED = 4;
    static final int MADV_MERGEABLE = 12;
    static final int MADV_HUGEPAGE = 14;
    static final int MADV_NOHUGEPAGE = 15;
    /** Linux 5.14: fault the range in for writing, as a write to each page would, in one call. */
    static final int MADV_POPULATE_WRITE = 23;
    static final int POSIX_FADV_DONTNEED = 4;
    /** {@code _SC_CLK_TCK} in glibc's and musl's {@code unistd.h} (Linux). */
    static final int SC_CLK_TCK = 2;
    static final int EPERM = 1;
    static final int ENOENT = 2;
    static final int EINTR = 4;
    static final int ENOMEM = 12;
    static final int EFAULT = 14;
    static final int EEXIST = 17;
    static final int EINVAL = 22;
    static final int ENOSYS = 38;
    /** A page with an uncorrectable hardware memory error (poisoned). */
    static final int EHWPOISON = 133;

    private Abi() {
    }
}
