package io.samepage.bench;

import io.samepage.hashing.Pages;
import io.samepage.linux.DiscardList;
import io.samepage.linux.NativeMemory;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * A reference for {@link ScanThreadsReport}: how fast one thread, and two threads side by side, give
 * freed frames back to the kernel through the frame pool's own path ({@link DiscardList}:
 * {@code process_madvise(MADV_DONTNEED)}, up to 1024 ranges a call), in the pattern the merge passes
 * free them: every other page, one-page ranges (ScanBenchmark's twin pairs each free one frame of two
 * neighbours). A region of {@value #REGION_MIB} MiB; before each timed run every page to be freed is
 * written (not timed), so each holds memory again. What the merge passes pay the kernel can go no
 * faster on two threads than this does.
 *
 * <p>Thread safety: one caller at a time; the threads it starts use a list each.
 */
final class ParallelDiscard implements AutoCloseable {

    static final int REGION_MIB = 512;
    private static final long REGION_BYTES = (long) REGION_MIB << 20;
    private static final long FREED_PAGES = REGION_BYTES / Pages.PAGE_SIZE / 2;

    private final Arena arena = Arena.ofShared();
    private final MemorySegment region;
    private final DiscardList[] lists = new DiscardList[2];

    ParallelDiscard() {
        try {
            region = NativeMemory.reserve(REGION_BYTES, 0, arena);
            for (int t = 0; t < lists.length; t++) {
                lists[t] = new DiscardList(region, arena);
            }
        } catch (RuntimeException e) {
            arena.close();
            throw e;
        }
    }

    /** True where the kernel takes memory back ({@link NativeMemory#available()}): Linux. */
    static boolean available() {
        return NativeMemory.available();
    }

    /**
     * Writes every other page, then times {@code threads} (1 or 2) threads each freeing those of one
     * half of the region; checks that every freed page reads as zeros again.
     *
     * @return pages freed per second of wall time
     */
    double pagesPerSecond(int threads) {
        if (threads < 1 || threads > lists.length) {
            throw new IllegalArgumentException("1 or " + lists.length + " threads, not " + threads);
        }
        for (long off = Pages.PAGE_SIZE; off < REGION_BYTES; off += 2L * Pages.PAGE_SIZE) {
            region.set(ValueLayout.JAVA_LONG, off, off);
        }
        long part = REGION_BYTES / threads;
        long start = System.nanoTime();
        SideBySide.run(threads, index -> free(lists[index], index * part, part));
        long elapsed = System.nanoTime() - start;
        for (long off = Pages.PAGE_SIZE; off < REGION_BYTES; off += 2L * Pages.PAGE_SIZE) {
            if (region.get(ValueLayout.JAVA_LONG, off) != 0) {
                throw new IllegalStateException("a freed page at offset " + off + " still holds data");
            }
        }
        return FREED_PAGES * 1e9 / elapsed;
    }

    /** Frees every other page of {@code [from, from + length)}, starting with its second. */
    private static void free(DiscardList list, long from, long length) {
        for (long off = from + Pages.PAGE_SIZE; off < from + length; off += 2L * Pages.PAGE_SIZE) {
            if (list.isFull()) {
                list.discard();
            }
            list.add(off, Pages.PAGE_SIZE);
        }
        list.discard();
    }

    @Override
    public void close() {
        arena.close();
    }
}
