package io.samepage.host;

import io.samepage.hashing.HashAlgorithm;
import io.samepage.hashing.PageHasher;
import io.samepage.hashing.Pages;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * How much of the mergeable processes' resident memory holds a page that another page also holds:
 * what KSM would share at steady state, estimated from their memory as it is now.
 *
 * <p>The method. Pages are read with {@link ProcessMemory}: only resident anonymous pages, never
 * written, never faulted in, and pages mapping the kernel's zero page are not memory and not read.
 * If the regions hold more resident pages than the budget, they are cut into 1 MiB slices and slices
 * are chosen evenly over all of them, weighted by their resident pages, until the budget is spent.
 * Each page read is tested for all zeros (a full compare) or else fast-hashed
 * ({@link HashAlgorithm#defaultAlgorithm()}); pages whose hashes agree are read again and compared in
 * full ({@link Pages#equal}): the hash only filters. {@code duplicatePages} is then
 * {@code pages read - distinct contents}, KSM's {@code pages_sharing} once every duplicate is merged.
 * It counts pages KSM already merged (they are still resident, one frame for all), and the derived
 * figures add the processes' {@code ksm_zero_pages} (pages KSM mapped to the zero page, which no longer
 * show as resident), so the estimate of a host where KSM has done its work stays what it was before.
 *
 * <p>What it gets wrong: a sample misses twins that lie in slices it did not read, so with a budget
 * below the resident memory it underestimates duplicates (zero pages excepted: each is found on its
 * own); pages that change between the two reads count as distinct, as KSM would leave them (volatile).
 *
 * <p>Memory: 20 bytes per page read (hash, address, region), 1.3 MiB for the default 256 MiB budget;
 * no object per page read, two per page read again (its one-page region, a view of the page). Not
 * thread safe; one estimate per call.
 */
public final class DuplicateEstimate {

    /** The most pages one estimate reads: the page index must fit the 24 low bits of a sort key. */
    public static final long MAX_BUDGET_PAGES = 1L << 24;

    private static final int PAGE = Pages.PAGE_SIZE;
    private static final int SLICE_PAGES = 256;
    private static final long INDEX_MASK = MAX_BUDGET_PAGES - 1;
    private static final int REPRESENTATIVES = 8;

    /**
     * The result, in 4 KiB pages.
     *
     * @param residentPages resident pages of the mergeable regions, read or not
     * @param pagesRead the pages read
     * @param zeroPages of those, pages of zeros
     * @param duplicatePages of those, pages whose content another page read also holds, beyond the first
     * @param unreadablePages resident pages that could not be read (the process exited, or refused it)
     * @param ksmZeroPages the processes' {@code ksm_zero_pages}: duplicates KSM already took away
     */
    public record Potential(long residentPages, long pagesRead, long zeroPages, long duplicatePages,
                            long unreadablePages, long ksmZeroPages) {

        /** Duplicates, KSM's zero pages included, as a percentage of the pages counted; 0 if none were. */
        public double duplicatePercent() {
            long counted = pagesRead + ksmZeroPages;
            return counted == 0 ? 0 : 100.0 * (duplicatePages + ksmZeroPages) / counted;
        }

        /** The duplicate share applied to all resident mergeable pages and KSM's zero pages, in bytes. */
        public long estimatedSavingBytes() {
            return (long) (duplicatePercent() / 100 * (residentPages + ksmZeroPages)) * PAGE;
        }
    }

    private final PageHasher hasher = HashAlgorithm.defaultAlgorithm().newHasher(0);
    private final long budget;
    /** Every region pages were read from, and the memory of its process. */
    private final List<MemoryRegion> regions = new ArrayList<>();
    private final List<ProcessMemory> regionMemory = new ArrayList<>();

    private long[] keys = new long[1024];
    private long[] addresses = new long[1024];
    private int[] regionOf = new int[1024];
    private int hashed;
    private long read;
    private long zero;
    private long unreadable;

    private final MemorySegment again = MemorySegment.ofBuffer(ByteBuffer.allocateDirect(PAGE));
    private final MemorySegment representatives = MemorySegment.ofBuffer(
            ByteBuffer.allocateDirect(REPRESENTATIVES * PAGE));
    private boolean readAgain;
    private final ResidentPageSink againSink = (address, page) -> {
        MemorySegment.copy(MemorySegment.ofBuffer(page), 0, again, 0, PAGE);
        readAgain = true;
    };

    private DuplicateEstimate(long budget) {
        this.budget = budget;
    }

    /**
     * Estimates over {@code processes} (of this machine's {@code /proc}), reading at most
     * {@code budgetPages} pages.
     *
     * @throws KernelKsmException {@code IO} if process memory cannot be read at all here (no native access)
     */
    public static Potential estimate(List<MergeableProcesses.Process> processes, long budgetPages) {
        if (budgetPages < 1 || budgetPages > MAX_BUDGET_PAGES) {
            throw new IllegalArgumentException("budget must be 1 to " + MAX_BUDGET_PAGES + " pages, not " + budgetPages);
        }
        return new DuplicateEstimate(budgetPages).run(processes);
    }

    private Potential run(List<MergeableProcesses.Process> processes) {
        List<ProcessMemory> opened = new ArrayList<>();
        try {
            long resident = 0;
            long ksmZero = 0;
            List<Long> regionResident = new ArrayList<>();
            for (MergeableProcesses.Process process : processes) {
                ProcessMemory memory;
                try {
                    memory = ProcessMemory.open(process.pid());
                } catch (ProcessScanException e) {
                    unreadable += process.residentBytes() / PAGE;
                    continue;
                }
                opened.add(memory);
                ksmZero += process.ksmZeroPages();
                for (MemoryRegion region : process.regions()) {
                    long pages = census(memory, region);
                    regions.add(region);
                    regionMemory.add(memory);
                    regionResident.add(pages);
                    resident += pages;
                }
            }
            double share = resident <= budget ? 1.0 : (double) budget / resident;
            double owed = 0;
            for (int r = 0; r < regions.size() && read < budget; r++) {
                if (share == 1.0) {
                    copy(r, regions.get(r), regionResident.get(r));
                    continue;
                }
                MemoryRegion region = regions.get(r);
                for (long start = region.start(); start < region.end() && read < budget; start += SLICE_PAGES * PAGE) {
                    MemoryRegion slice = slice(region, start, Math.min(region.end(), start + SLICE_PAGES * PAGE));
                    long pages = census(regionMemory.get(r), slice);
                    owed += share * pages;
                    if (pages > 0 && owed >= Math.min(pages, budget - read) * 0.5) {
                        owed -= pages;
                        copy(r, slice, pages);
                    }
                }
            }
            long distinct = (zero > 0 ? 1 : 0) + distinctContents();
            return new Potential(resident, read, zero, read - distinct, unreadable, ksmZero);
        } finally {
            for (ProcessMemory memory : opened) {
                memory.close();
            }
        }
    }

    /** The resident pages of {@code region} now; 0 if the process has gone. */
    private static long census(ProcessMemory memory, MemoryRegion region) {
        try {
            return memory.census(region, false).pagesResident();
        } catch (ProcessScanException e) {
            return 0;
        }
    }

    /** Reads the resident pages of {@code region} (of region {@code index}) until the budget is spent. */
    private void copy(int index, MemoryRegion region, long residentPages) {
        try {
            RegionScan scan = regionMemory.get(index).copyResident(region, false,
                    (address, pages) -> accept(index, address, pages));
            unreadable += scan.pagesUnreadable();
        } catch (ProcessScanException e) {
            if (e.kind() == ProcessScanException.Kind.IO) {
                throw new KernelKsmException(KernelKsmException.Kind.IO, "cannot read process memory for the "
                        + "estimate: " + e.getMessage(), List.of(), e);
            }
            unreadable += residentPages;
        }
    }

    /** Takes a run of pages from {@link ProcessMemory#copyResident}: zero test, or hash and remember. */
    private void accept(int region, long address, ByteBuffer pages) {
        MemorySegment segment = MemorySegment.ofBuffer(pages);
        int count = (int) (segment.byteSize() / PAGE);
        for (int i = 0; i < count && read < budget; i++) {
            long offset = (long) i * PAGE;
            read++;
            if (Pages.isZeroPage(segment, offset)) {
                zero++;
                continue;
            }
            if (hashed == keys.length) {
                int capacity = (int) Math.min(budget, (long) hashed * 2);
                keys = Arrays.copyOf(keys, capacity);
                addresses = Arrays.copyOf(addresses, capacity);
                regionOf = Arrays.copyOf(regionOf, capacity);
            }
            keys[hashed] = (hasher.hash(segment, offset) & ~INDEX_MASK) | hashed;
            addresses[hashed] = address + offset;
            regionOf[hashed] = region;
            hashed++;
        }
    }

    /**
     * Counts the distinct contents among the hashed pages: sorts the keys (hash bits, then page index),
     * and within each run of equal hash bits reads the pages again and compares them in full.
     */
    private long distinctContents() {
        long[] sorted = Arrays.copyOf(keys, hashed);
        Arrays.sort(sorted);
        long distinct = 0;
        int i = 0;
        while (i < sorted.length) {
            int j = i + 1;
            while (j < sorted.length && (sorted[j] & ~INDEX_MASK) == (sorted[i] & ~INDEX_MASK)) {
                j++;
            }
            distinct += j - i == 1 ? 1 : distinctInGroup(sorted, i, j);
            i = j;
        }
        return distinct;
    }

    private long distinctInGroup(long[] sorted, int from, int to) {
        int kept = 0;
        long distinct = 0;
        for (int k = from; k < to; k++) {
            int index = (int) (sorted[k] & INDEX_MASK);
            if (!readAgain(regionOf[index], addresses[index])) {
                distinct++;
                continue;
            }
            boolean seen = false;
            for (int rep = 0; rep < kept && !seen; rep++) {
                seen = Pages.equal(again, 0, representatives, (long) rep * PAGE);
            }
            if (!seen) {
                distinct++;
                if (kept < REPRESENTATIVES) {
                    MemorySegment.copy(again, 0, representatives, (long) kept * PAGE, PAGE);
                    kept++;
                }
            }
        }
        return distinct;
    }

    /** Reads the page at {@code address} of region {@code region} again into {@link #again}; false if it is gone. */
    private boolean readAgain(int region, long address) {
        readAgain = false;
        try {
            regionMemory.get(region).copyResident(slice(regions.get(region), address, address + PAGE), false,
                    againSink);
        } catch (ProcessScanException e) {
            return false;
        }
        return readAgain;
    }

    /** The part {@code [start, end)} of {@code region}, with its file offset moved along. */
    private static MemoryRegion slice(MemoryRegion region, long start, long end) {
        long offset = region.inode() == 0 ? region.offset() : region.offset() + (start - region.start());
        return new MemoryRegion(start, end, region.permissions(), offset, region.device(), region.inode(),
                region.path());
    }
}
