package io.samepage.host;

import java.util.Locale;
import java.util.Set;
import java.util.regex.Pattern;

/**
 * One line of {@code /proc/PID/maps}: a mapping of a process's address space.
 *
 * <p>Addresses and the offset are unsigned 64-bit values held in a {@code long} (the {@code [vsyscall]}
 * page sits at {@code ffffffffff600000}, negative as a signed long); compare them with
 * {@link Long#compareUnsigned}.
 *
 * @param start       first byte, page aligned
 * @param end         one past the last byte, page aligned, after {@code start}
 * @param permissions four characters as the kernel prints them: {@code r|-}, {@code w|-}, {@code x|-},
 *                    {@code p} (private, copy-on-write) or {@code s} (shared)
 * @param offset      offset into the mapped file (0 for anonymous memory)
 * @param device      major:minor of the file's device, in hex as printed ({@code 00:00} if anonymous)
 * @param inode       the file's inode (0 if anonymous)
 * @param path        the file, a pseudo-name ({@code [heap]}, {@code [stack]}, {@code [anon:NAME]},
 *                    {@code /memfd:NAME (deleted)}) or empty for unnamed anonymous memory
 */
public record MemoryRegion(long start, long end, String permissions, long offset, String device, long inode,
        String path) {

    /** Bytes per page; pagemap and every region use 4 KiB pages on the architectures this code runs on. */
    public static final int PAGE_SIZE = 4096;

    /** Pseudo-mappings of kernel data that cannot be read as memory (VM_IO or VM_PFNMAP, or no VMA). */
    private static final Set<String> KERNEL_SPECIAL = Set.of("[vvar]", "[vvar_vclock]", "[vsyscall]");

    private static final Pattern PERMISSIONS = Pattern.compile("[r-][w-][x-][ps]");

    /**
     * @throws IllegalArgumentException if the range is empty or unaligned, or the permissions are not
     *                                  four valid characters ({@link MemoryMaps} turns this into a
     *                                  {@link ProcessScanException} naming the line)
     */
    public MemoryRegion {
        if (((start | end) & (PAGE_SIZE - 1)) != 0) {
            throw new IllegalArgumentException("range " + hex(start) + "-" + hex(end) + " is not page aligned");
        }
        if (Long.compareUnsigned(start, end) >= 0) {
            throw new IllegalArgumentException("range " + hex(start) + "-" + hex(end) + " is empty or reversed");
        }
        if (permissions == null || !PERMISSIONS.matcher(permissions).matches()) {
            throw new IllegalArgumentException("permissions '" + permissions + "' are not four of r/-, w/-, x/-, p/s");
        }
        if (device == null || path == null) {
            throw new IllegalArgumentException("device and path must not be null (use \"00:00\" and \"\")");
        }
    }

    public long bytes() {
        return end - start;
    }

    public long pages() {
        return (end - start) >>> 12;
    }

    public boolean readable() {
        return permissions.charAt(0) == 'r';
    }

    public boolean writable() {
        return permissions.charAt(1) == 'w';
    }

    public boolean executable() {
        return permissions.charAt(2) == 'x';
    }

    /** Private ({@code p}): writes are copy-on-write and make anonymous pages, which KSM can merge. */
    public boolean isPrivate() {
        return permissions.charAt(3) == 'p';
    }

    /** Unnamed anonymous memory: no file and no pseudo-name (not {@code [heap]}, not {@code [anon:...]}). */
    public boolean anonymous() {
        return inode == 0 && path.isEmpty();
    }

    /** {@code [vvar]}, {@code [vvar_vclock]} or {@code [vsyscall]}: kernel pages no read can reach. */
    public boolean kernelSpecial() {
        return KERNEL_SPECIAL.contains(path);
    }

    public boolean contains(long address) {
        return Long.compareUnsigned(address, start) >= 0 && Long.compareUnsigned(address, end) < 0;
    }

    /** The line as {@code /proc/PID/maps} prints it, without the padding before the path. */
    @Override
    public String toString() {
        return hex(start) + "-" + hex(end) + " " + permissions + " " + String.format(Locale.ROOT, "%08x", offset)
                + " " + device + " " + Long.toUnsignedString(inode) + (path.isEmpty() ? "" : " " + path);
    }

    private static String hex(long value) {
        String digits = Long.toHexString(value);
        return digits.length() >= 8 ? digits : "0".repeat(8 - digits.length()) + digits;
    }
}
