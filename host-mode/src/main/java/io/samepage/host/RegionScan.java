package io.samepage.host;

/**
 * What {@link ProcessMemory#copyResident} (or {@link ProcessMemory#census}) found in one region, page by
 * page as {@code /proc/PID/pagemap} classified it when the page was reached. Every page of the region is
 * in exactly one of the page counts, unless {@link #exited()}: then the pages after the process exited
 * are in none.
 *
 * @param region            the region
 * @param pagesResident     present pages of the kind asked for: the pages to read
 * @param pagesRead         of those, the pages read and handed to the sink (0 for a census)
 * @param pagesUnreadable   present pages that could not be read: unmapped between the pagemap read
 *                          and the copy, or memory no copy reaches (device memory); they take no RAM
 *                          from this process's point of view and are not in the copy
 * @param pagesNotPresent   never touched, or dropped by the kernel: no frame
 * @param pagesSwapped      swapped out: on the swap device, not in RAM (never read: that would swap them in)
 * @param pagesZeroPage     present, but mapping the kernel's shared zero page or huge zero page (read,
 *                          never written): no RAM of their own; 0 where frame numbers are hidden (not
 *                          CAP_SYS_ADMIN), and such pages then count as resident
 * @param pagesFileBacked   present pages of the page cache or shared memory, left out because the
 *                          caller asked for anonymous pages only
 * @param exited            the process exited during the copy: the result covers the pages before
 */
public record RegionScan(MemoryRegion region, long pagesResident, long pagesRead, long pagesUnreadable,
        long pagesNotPresent, long pagesSwapped, long pagesZeroPage, long pagesFileBacked, boolean exited) {

    /** Pages that cost the host no RAM of their own: not present, swapped, zero page or unreadable. */
    public long pagesNotResident() {
        return pagesNotPresent + pagesSwapped + pagesZeroPage + pagesUnreadable;
    }
}
