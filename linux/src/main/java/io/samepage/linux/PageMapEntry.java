package io.samepage.linux;

/**
 * Decodes one 64-bit entry of {@code /proc/PID/pagemap} (Documentation/admin-guide/mm/pagemap.rst):
 *
 * <pre>
 * bit  63     page present (mapped to a frame in the process's page table)
 * bit  62     page swapped (then bits 0-4 are the swap type and 5-54 the swap offset)
 * bit  61     page is a file page or shared anonymous (the page cache or shmem, not private anonymous)
 * bit  60-57  zero, uffd-wp, guard region: not used here
 * bit  56     page exclusively mapped (by this process only)
 * bit  55     soft-dirty
 * bits 0-54   page frame number if present, and only with CAP_SYS_ADMIN (zero otherwise)
 * </pre>
 *
 * <p>Reading pagemap walks the page table and never faults a page in: it is how
 * host mode's process reader knows which pages it may read without making anything resident.
 *
 * <p>Stateless and thread safe.
 */
public final class PageMapEntry {

    public static final long PRESENT = 1L << 63;
    public static final long SWAPPED = 1L << 62;
    public static final long FILE_OR_SHARED = 1L << 61;
    public static final long EXCLUSIVE = 1L << 56;
    public static final long SOFT_DIRTY = 1L << 55;
    public static final long FRAME_MASK = (1L << 55) - 1;

    private PageMapEntry() {
    }

    /** Mapped to a frame now: reading it faults nothing in. */
    public static boolean present(long entry) {
        return (entry & PRESENT) != 0;
    }

    /** Swapped out: reading it would swap it in, so host mode's process reader never does. */
    public static boolean swapped(long entry) {
        return (entry & SWAPPED) != 0;
    }

    /** A page of the page cache or shared memory: already shared by the kernel, not mergeable by KSM. */
    public static boolean fileOrShared(long entry) {
        return (entry & FILE_OR_SHARED) != 0;
    }

    public static boolean exclusive(long entry) {
        return (entry & EXCLUSIVE) != 0;
    }

    public static boolean softDirty(long entry) {
        return (entry & SOFT_DIRTY) != 0;
    }

    /**
     * The page frame number of a present page, or 0 where the kernel hides it (without
     * CAP_SYS_ADMIN), or -1 for a page that is not present.
     */
    public static long frame(long entry) {
        return present(entry) ? entry & FRAME_MASK : -1;
    }
}
