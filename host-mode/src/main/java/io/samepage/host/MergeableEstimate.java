package io.samepage.host;

import io.samepage.hashing.Pages;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;

/**
 * What kernel KSM would save on the mergeable processes, read once: the estimate of the policy loop
 * ({@link KsmPolicyLoop}) and of {@code samepage ksm tune}.
 *
 * <p>The method. Each mergeable process ({@link MergeableProcesses}) is one guest of a
 * {@link PageDigestEstimator}; its resident anonymous pages are read with {@link ProcessMemory} (never
 * written, never faulted in; pages mapping the kernel's zero page are not memory and not read) and each
 * is kept as a 128-bit digest, never as a copy, and never read again. The estimator then derives the
 * counters KSM reaches at steady state under the {@code max_page_sharing} and {@code use_zero_pages}
 * it will run with ({@link PageDigestEstimator#estimate}); the saving is their
 * {@code pages_sharing + ksm_zero_pages}, KSM's own measure of what it saves
 * ({@link KsmStatus#savedBytes()}), so prediction and achievement are read in one unit. Pages KSM
 * already merged are still resident (one frame for all) and count as before; pages it mapped to the
 * zero page ({@code ksm_zero_pages} of {@code /proc/PID/ksm_stat}) are no longer resident, so they are
 * added to the saving as they are, and the estimate of a host where KSM has done its work stays what it
 * was before.
 *
 * <p>The sample. If the regions hold more resident pages than the budget, they are cut into 1 MiB
 * slices and slices are chosen evenly over all of them, weighted by their resident pages, until the
 * budget is spent; the saving found is scaled to all resident pages. A sample misses twins that lie in
 * slices it did not read, so it underestimates (zero pages excepted). Within the budget every resident
 * page is read and nothing is scaled.
 *
 * <p>The cost, besides the pages read: one walk of the regions' pagemap, to count their resident
 * pages slice by slice (the slices are chosen from that count, not from a second walk), so time grows
 * with the regions' size, mapped or resident, whatever the budget: seconds to tens of seconds per TiB
 * (measured on a shared 2-core VM: 10 to 65 ms per GiB resident, 0.6 to 7.5 per GiB mapped but never
 * touched). {@link MergeableProcesses#find}'s read of smaps walks the same page tables
 * before, at about the same cost. Nothing caps the walk: the count is what a sample is scaled by, and
 * a count of part of the regions would make the saving a guess on a guess while the smaps walk, which
 * finds the regions, still covered them all.
 *
 * <p>Processes are read one at a time, so any number of them fits tight limits on descriptors and
 * native memory: each is opened, its resident pages counted, and closed; once all are counted, each is
 * opened again, read and closed. At most one is open at any moment: two descriptors and about 1 MiB of
 * buffers ({@link ProcessMemory}), released on every path out, failures included. A process that cannot
 * be opened again (it exited, or is refused now), or whose pid names another process by then, is
 * counted as one that exited after its count: the counted pages it was to read are unreadable.
 *
 * <p>Memory: the digest table's 30 bytes or so per page read ({@link DigestTable}), nothing per page
 * otherwise. Not thread safe; one estimate per call.
 */
public final class MergeableEstimate {

    /** The most pages one estimate reads: 2^24, 64 GiB, a digest table of about 0.5 GiB. */
    public static final long MAX_BUDGET_PAGES = 1L << 24;

    /** The kernel's {@code max_page_sharing} where it does not say (its default). */
    static final int KERNEL_DEFAULT_MAX_PAGE_SHARING = 256;

    private static final int PAGE = Pages.PAGE_SIZE;
    private static final long SLICE_PAGES = 256;

    /**
     * The estimate, in 4 KiB pages.
     *
     * @param residentPages resident pages of the mergeable regions, read or not
     * @param pagesRead the pages read
     * @param zeroPages of those, pages of zeros
     * @param pagesShared KSM's {@code pages_shared} at steady state for the pages read
     * @param pagesSharing its {@code pages_sharing} for the pages read
     * @param ksmZeroPages its {@code ksm_zero_pages} for the pages read (0 without {@code use_zero_pages})
     * @param unreadablePages resident pages that could not be read (the process exited, or refused it)
     * @param ksmZeroPagesNow the processes' {@code ksm_zero_pages} now: zero pages KSM already took away,
     *     which are not resident
     * @param maxPageSharing the {@code max_page_sharing} estimated under
     * @param useZeroPages the {@code use_zero_pages} estimated under
     */
    public record Potential(long residentPages, long pagesRead, long zeroPages, long pagesShared, long pagesSharing,
                            long ksmZeroPages, long unreadablePages, long ksmZeroPagesNow, int maxPageSharing,
                            boolean useZeroPages) {

        /** An estimate of nothing read, under the kernel's defaults. */
        public static Potential none() {
            return new Potential(0, 0, 0, 0, 0, 0, 0, 0, KERNEL_DEFAULT_MAX_PAGE_SHARING, false);
        }

        /** Pages the pages read would save: {@code pages_sharing + ksm_zero_pages}, and KSM's zero pages now. */
        public long savedPages() {
            return pagesSharing + ksmZeroPages + ksmZeroPagesNow;
        }

        /** Whether fewer pages were read than are resident, so the saving is scaled up. */
        public boolean sampled() {
            return pagesRead < residentPages;
        }

        /** The pages saved as a percentage of the pages counted (read, and KSM's zero pages now); 0 if none. */
        public double duplicatePercent() {
            long counted = pagesRead + ksmZeroPagesNow;
            return counted == 0 ? 0 : 100.0 * savedPages() / counted;
        }

        /**
         * What KSM would save, in bytes: {@link #savedPages()}, scaled to all resident mergeable pages if
         * only a sample was read.
         */
        public long estimatedSavingBytes() {
            if (!sampled()) {
                return savedPages() * PAGE;
            }
            return (long) (duplicatePercent() / 100 * (residentPages + ksmZeroPagesNow)) * PAGE;
        }
    }

    private final long budget;
    private long read;
    private long unreadable;
    private PageDigestEstimator estimator;

    private MergeableEstimate(long budget) {
        this.budget = budget;
    }

    /**
     * The {@code max_page_sharing} KSM will run with: {@code configured} if not 0 and the kernel allows
     * a change now (no page is shared), else the kernel's.
     */
    public static int maxPageSharing(KsmStatus status, long configured) {
        if (configured != 0 && status.pagesShared() == 0) {
            return (int) configured;
        }
        long kernel = status.number(KsmKnob.MAX_PAGE_SHARING.sysfsName()).orElse(KERNEL_DEFAULT_MAX_PAGE_SHARING);
        return (int) Math.clamp(kernel, 2, Integer.MAX_VALUE);
    }

    /** The kernel's {@code use_zero_pages}: true if it reads 1. */
    public static boolean useZeroPages(KsmStatus status) {
        return status.number(KsmKnob.USE_ZERO_PAGES.sysfsName()).orElse(0) == 1;
    }

    /**
     * Reads {@code processes} (of this machine's {@code /proc}), at most {@code budgetPages} pages, and
     * estimates what KSM would save under {@code maxPageSharing} and {@code useZeroPages}.
     *
     * @throws KernelKsmException {@code IO} if process memory cannot be read at all here (no native access)
     * @throws IllegalArgumentException if the budget is out of range or {@code maxPageSharing < 2}
     */
    public static Potential estimate(List<MergeableProcesses.Process> processes, long budgetPages,
                                     int maxPageSharing, boolean useZeroPages) {
        if (budgetPages < 1 || budgetPages > MAX_BUDGET_PAGES) {
            throw new IllegalArgumentException("budget must be 1 to " + MAX_BUDGET_PAGES + " pages, not " + budgetPages);
        }
        if (maxPageSharing < 2) {
            throw new IllegalArgumentException("max_page_sharing must be at least 2, not " + maxPageSharing);
        }
        return new MergeableEstimate(budgetPages).run(processes, maxPageSharing, useZeroPages);
    }

    private Potential run(List<MergeableProcesses.Process> processes, int maxPageSharing, boolean useZeroPages) {
        long resident = 0;
        long ksmZeroNow = 0;
        List<MemoryRegion> regions = new ArrayList<>();
        List<Long> regionResident = new ArrayList<>();
        List<Integer> regionProcess = new ArrayList<>();
        List<MergeableProcesses.Process> counted = new ArrayList<>();
        List<Long> startTimes = new ArrayList<>();
        Slices slices = new Slices();
        for (MergeableProcesses.Process process : processes) {
            ProcessMemory memory;
            try {
                memory = ProcessMemory.open(process.pid());
            } catch (ProcessScanException e) {
                unreadable += process.residentBytes() / PAGE;
                continue;
            }
            try {
                counted.add(process);
                startTimes.add(memory.startTime());
                ksmZeroNow += process.ksmZeroPages();
                for (MemoryRegion region : process.regions()) {
                    long pages = census(memory, region, slices);
                    regions.add(region);
                    regionResident.add(pages);
                    regionProcess.add(counted.size() - 1);
                    resident += pages;
                }
            } finally {
                close(memory);
            }
        }
        estimator = new PageDigestEstimator(Math.max(1, Math.min(resident, budget)), false); // no sketches: KSM needs none
        double share = resident <= budget ? 1.0 : (double) budget / resident;
        double owed = 0;
        int guest = -1;
        ProcessMemory memory = null;
        try {
            for (int r = 0; r < regions.size() && read < budget; r++) {
                int p = regionProcess.get(r);
                if (p != guest) {
                    close(memory);
                    memory = reopen(counted.get(p), startTimes.get(p));
                    MergeableProcesses.Process process = counted.get(p);
                    estimator.beginGuest("pid " + process.pid() + " (" + process.command() + ")");
                    guest = p;
                }
                MemoryRegion region = regions.get(r);
                if (share == 1.0) {
                    read(memory, region, regionResident.get(r));
                    continue;
                }
                for (int k = slices.first(r); k < slices.first(r + 1) && read < budget; k++) {
                    long pages = slices.resident[k];
                    owed += share * pages;
                    if (owed >= Math.min(pages, budget - read) * 0.5) {
                        owed -= pages;
                        long start = region.start() + slices.index[k] * SLICE_PAGES * PAGE;
                        read(memory, slice(region, start, Math.min(region.end(), start + SLICE_PAGES * PAGE)), pages);
                    }
                }
            }
        } finally {
            close(memory);
        }
        PageDigestEstimator.Estimate e = estimator.estimate(maxPageSharing, useZeroPages);
        return new Potential(resident, e.pagesRead(), e.zeroPages(), e.pagesShared(), e.pagesSharing(),
                e.ksmZeroPages(), unreadable, ksmZeroNow, maxPageSharing, useZeroPages);
    }

    /**
     * The counted process opened again to be read, or null, as for one that exited meanwhile, if it is
     * gone, refused now, or its pid now names another process (a later start), or its start time could
     * not be read (so a reused pid could not be told apart).
     */
    private static ProcessMemory reopen(MergeableProcesses.Process process, long startTime) {
        ProcessMemory memory;
        try {
            memory = ProcessMemory.open(process.pid());
        } catch (ProcessScanException e) {
            return null;
        }
        if (startTime < 0 || memory.startTime() != startTime) {
            close(memory);
            return null;
        }
        return memory;
    }

    /**
     * Closes {@code memory} if not null. A close that reports an error has released the descriptor all
     * the same, and a read-only file loses nothing, so it changes nothing here.
     */
    private static void close(ProcessMemory memory) {
        if (memory == null) {
            return;
        }
        try {
            memory.close();
        } catch (ProcessScanException ignored) {
            // released all the same (see above)
        }
    }

    /**
     * The resident pages of {@code region} now, each slice's kept in {@code slices}; 0 and none if the
     * process has gone.
     */
    private static long census(ProcessMemory memory, MemoryRegion region, Slices slices) {
        slices.beginRegion();
        try {
            return memory.census(region, false, (int) SLICE_PAGES, slices::add).pagesResident();
        } catch (ProcessScanException e) {
            slices.dropRegion();
            return 0;
        }
    }

    /**
     * Reads the resident pages of {@code region} into the estimator until the budget is spent; all
     * {@code residentPages} are unreadable if the process could not be opened again.
     */
    private void read(ProcessMemory memory, MemoryRegion region, long residentPages) {
        if (memory == null) {
            unreadable += residentPages;
            return;
        }
        try {
            RegionScan scan = memory.copyResident(region, false, this::accept);
            unreadable += scan.pagesUnreadable();
        } catch (ProcessScanException e) {
            if (e.kind() == ProcessScanException.Kind.IO) {
                throw new KernelKsmException(KernelKsmException.Kind.IO, "cannot read process memory for the "
                        + "estimate: " + e.getMessage(), List.of(), e);
            }
            unreadable += residentPages;
        }
    }

    private void accept(long address, ByteBuffer pages) {
        long count = Math.min(pages.remaining() / PAGE, budget - read);
        if (count <= 0) {
            return;
        }
        estimator.accept(MemorySegment.ofBuffer(pages).asSlice(0, count * PAGE));
        read += count;
    }

    /**
     * The slices of the regions counted that hold resident pages, region by region: 8 bytes per slice,
     * at most 8 per resident MiB, nothing for a slice with none.
     */
    private static final class Slices {
        private int[] firsts = new int[16];
        private int regions;
        int[] index = new int[64];
        int[] resident = new int[64];
        private int count;

        void beginRegion() {
            if (regions + 1 == firsts.length) {
                firsts = java.util.Arrays.copyOf(firsts, firsts.length * 2);
            }
            firsts[regions++] = count;
            firsts[regions] = count;
        }

        /** Forgets the slices of the region begun last. */
        void dropRegion() {
            count = firsts[regions - 1];
            firsts[regions] = count;
        }

        void add(long slice, int pages) {
            if (count == index.length) {
                index = java.util.Arrays.copyOf(index, count * 2);
                resident = java.util.Arrays.copyOf(resident, count * 2);
            }
            index[count] = (int) slice;
            resident[count++] = pages;
            firsts[regions] = count;
        }

        /** Where region {@code r}'s slices start; {@code first(r + 1)} is where they end. */
        int first(int r) {
            return firsts[r];
        }
    }

    /** The part {@code [start, end)} of {@code region}, with its file offset moved along. */
    private static MemoryRegion slice(MemoryRegion region, long start, long end) {
        long offset = region.inode() == 0 ? region.offset() : region.offset() + (start - region.start());
        return new MemoryRegion(start, end, region.permissions(), offset, region.device(), region.inode(),
                region.path());
    }
}
