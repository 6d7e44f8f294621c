package io.samepage.density;

import io.samepage.hashing.HashAlgorithm;
import io.samepage.hashing.PageHasher;
import io.samepage.hashing.Pages;
import io.samepage.linux.DiscardList;
import io.samepage.linux.NativeMemory;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.management.ManagementFactory;
import java.lang.management.ThreadMXBean;
import java.nio.ByteBuffer;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.Arrays;
import java.util.HashMap;
import java.util.Map;

/**
 * The merge floor: the work a merge that finds duplicates by hashing must do on the suite's page mix, timed on
 * one thread beside mode (b), so that (b)'s pages merged per CPU-second can be read against it as well as
 * against kernel KSM's (which walks trees of pages instead of hashing, and reads more of them).
 *
 * <p>The guests' pages are written into one region of anonymous memory, placed as the engine's pool places
 * its frames ({@link NativeMemory#reserve(long, long, Arena)}, the first guest page starting a 2 MiB block).
 * Then, with the clock running, every page is read once: checked for zeros if its first word is zero, else
 * hashed with the engine's default keyed hash. A page that duplicates an earlier one is compared with it in
 * full and its memory goes back to the kernel through {@code process_madvise}, 1,024 ranges a call, adjacent
 * pages in one range ({@link DiscardList}, the pool's own path). A zero page goes back with no compare. What
 * the floor leaves out is everything a merge needs to find its duplicates: which earlier page a page
 * duplicates is worked out before the clock starts, from the page mix's layout and the image's bytes. So
 * it frees exactly the pages (b) saves, doing only the reads, hashes, compares and frees every hashing merge of
 * this mix does (with no index, page table, lock or counter), each in the plainest way: (b)'s rate against it
 * says what (b)'s finding of its duplicates costs on top of that work.
 *
 * @param pagesFreed the pages given back: the zero pages and every duplicate of an earlier page
 * @param cpuSeconds this thread's CPU time for the reads, compares and frees
 */
record MergeFloor(long pagesFreed, double cpuSeconds) {

    private static final int PAGE = Pages.PAGE_SIZE;
    private static final long HASH_SEED = 0x5EED_F100_0000_0001L;
    private static final ThreadMXBean THREADS = ManagementFactory.getThreadMXBean();
    /** Keeps the hashes from being optimized away. */
    private static volatile long sink;

    /** Pages freed per CPU-second. */
    double pagesPerCpuSecond() {
        return pagesFreed / cpuSeconds;
    }

    /** Whether this machine can measure it: the region and its discards need Linux's native memory calls. */
    static boolean available() {
        return NativeMemory.available();
    }

    /**
     * Measures the floor for the first {@code n} guests of {@code content}.
     *
     * @throws IllegalStateException if native memory is not {@linkplain #available() available} or the kernel
     *                               refuses the region or a discard
     */
    static MergeFloor measure(PageMix content, int n) {
        int[] original = originals(content, n);
        long guestBytes = content.guestBytes();
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment region = NativeMemory.reserve(guestBytes * n, 0, arena);
            for (int g = 0; g < n; g++) {
                content.fill(g, region.asSlice(g * guestBytes, guestBytes));
            }
            PageHasher hasher = HashAlgorithm.defaultAlgorithm().newHasher(HASH_SEED);
            DiscardList discards = new DiscardList(region, arena);
            long start = THREADS.getCurrentThreadCpuTime();
            long freed = 0;
            long hashes = 0;
            for (int page = 0; page < original.length; page++) {
                long offset = (long) page * PAGE;
                boolean duplicate;
                if (region.get(ValueLayout.JAVA_LONG, offset) == 0 && Pages.isZeroPage(region, offset)) {
                    duplicate = true;
                } else {
                    hashes += hasher.hash(region, offset);
                    duplicate = original[page] != page && sameBytes(region, offset, (long) original[page] * PAGE);
                }
                if (duplicate) {
                    if (discards.isFull()) {
                        discards.discard();
                    }
                    discards.add(offset, PAGE);
                    freed++;
                }
            }
            discards.discard();
            double cpuSeconds = (THREADS.getCurrentThreadCpuTime() - start) / 1e9;
            sink = hashes;
            return new MergeFloor(freed, cpuSeconds);
        }
    }

    private static boolean sameBytes(MemorySegment region, long a, long b) {
        return MemorySegment.mismatch(region, a, a + PAGE, region, b, b + PAGE) < 0;
    }

    /**
     * For each page of the first {@code n} guests, in guest then page order, the first page with the same
     * bytes, itself if none is earlier. Only unchanged image pages repeat: the pages written after boot carry
     * bytes of their own guest, as do the unique pages; zero pages are found by their bytes when timed. Image
     * blocks with the same bytes are told apart by their SHA-256, and the timed compare checks them in full.
     */
    static int[] originals(PageMix content, int n) {
        int pages = content.pagesPerGuest();
        int[] original = new int[Math.multiplyExact(n, pages)];
        int[] firstOfSlot = new int[content.imagePages()];
        Arrays.fill(firstOfSlot, -1);
        Map<ByteBuffer, Integer> firstOfDigest = new HashMap<>();
        byte[] bytes = new byte[PAGE];
        for (int g = 0; g < n; g++) {
            for (int p = 0; p < pages; p++) {
                int page = g * pages + p;
                int slot = content.unchangedImageSlot(g, p);
                if (slot < 0) {
                    original[page] = page;
                    continue;
                }
                if (firstOfSlot[slot] < 0) {
                    content.page(g, p, bytes);
                    firstOfSlot[slot] = firstOfDigest.computeIfAbsent(ByteBuffer.wrap(sha256(bytes)), k -> page);
                }
                original[page] = firstOfSlot[slot];
            }
        }
        return original;
    }

    private static byte[] sha256(byte[] bytes) {
        try {
            return MessageDigest.getInstance("SHA-256").digest(bytes);
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("this JDK has no SHA-256", e);
        }
    }
}
