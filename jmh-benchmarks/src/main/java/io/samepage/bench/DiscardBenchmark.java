package io.samepage.bench;

import io.samepage.linux.DiscardList;
import io.samepage.linux.NativeMemory;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OperationsPerInvocation;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

/**
 * What the kernel charges to take freed frames back, by how they lie: the frame pool's own discard path
 * ({@link DiscardList}: {@code process_madvise(MADV_DONTNEED)}, up to 1024 ranges a call) over a 1 GiB
 * region whose 2 MiB blocks ({@link NativeMemory#BLOCK_BYTES}, one page table each) start at its first
 * byte. Every pattern discards the same 131,072 resident pages, half the region, and is scored in
 * nanoseconds per page:
 * <ul>
 *   <li>{@code wholeBlocks}: every page of every other block, the reference;</li>
 *   <li>{@code halfOfEveryBlock}: the first 256 pages of every block, 256-page ranges;</li>
 *   <li>{@code everyOtherPage}: every other page, one-page ranges, as twin pairs free them.</li>
 * </ul>
 * Before each shot every page to be discarded is written, so each one holds memory again.
 */
@State(Scope.Thread)
@Fork(value = 1, jvmArgsAppend = "--enable-native-access=ALL-UNNAMED")
@BenchmarkMode(Mode.SingleShotTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Warmup(iterations = 3)
@Measurement(iterations = 10)
public class DiscardBenchmark {

    static final long REGION_BYTES = 1L << 30;
    static final int PAGE = 4096;
    static final int BLOCK_PAGES = (int) (NativeMemory.BLOCK_BYTES / PAGE);
    static final int DISCARDED_PAGES = (int) (REGION_BYTES / PAGE / 2);

    @Param({"wholeBlocks", "halfOfEveryBlock", "everyOtherPage"})
    public String pattern;

    private Arena arena;
    private MemorySegment region;
    private DiscardList list;
    /** The ranges to discard: offset and length in bytes, pair by pair. */
    private long[] ranges;

    @Setup(Level.Trial)
    public void map() {
        arena = Arena.ofShared();
        region = NativeMemory.reserve(REGION_BYTES, 0, arena);
        list = new DiscardList(region, arena);
        ranges = ranges(pattern);
    }

    static long[] ranges(String pattern) {
        int pages = (int) (REGION_BYTES / PAGE);
        int[] runAndStride = switch (pattern) {
            case "wholeBlocks" -> new int[] {BLOCK_PAGES, 2 * BLOCK_PAGES};
            case "halfOfEveryBlock" -> new int[] {BLOCK_PAGES / 2, BLOCK_PAGES};
            case "everyOtherPage" -> new int[] {1, 2};
            default -> throw new IllegalArgumentException("no discard pattern " + pattern);
        };
        int run = runAndStride[0];
        int stride = runAndStride[1];
        long[] ranges = new long[2 * (pages / stride)];
        for (int r = 0; r < pages / stride; r++) {
            ranges[2 * r] = (long) r * stride * PAGE;
            ranges[2 * r + 1] = (long) run * PAGE;
        }
        if (ranges.length / 2 * (long) run != DISCARDED_PAGES) {
            throw new IllegalStateException(pattern + " discards " + ranges.length / 2 * (long) run + " pages");
        }
        return ranges;
    }

    @Setup(Level.Invocation)
    public void touch() {
        for (int r = 0; r < ranges.length; r += 2) {
            for (long off = ranges[r]; off < ranges[r] + ranges[r + 1]; off += PAGE) {
                region.set(ValueLayout.JAVA_LONG, off, off + 1);
            }
        }
    }

    @Benchmark
    @OperationsPerInvocation(DISCARDED_PAGES)
    public void discard() {
        for (int r = 0; r < ranges.length; r += 2) {
            if (list.isFull()) {
                list.discard();
            }
            list.add(ranges[r], ranges[r + 1]);
        }
        list.discard();
    }

    /** Checks after each iteration that the last shot gave every page back: they read as zeros again. */
    @TearDown(Level.Iteration)
    public void verify() {
        for (int r = 0; r < ranges.length; r += 2) {
            if (region.get(ValueLayout.JAVA_LONG, ranges[r]) != 0) {
                throw new IllegalStateException("a discarded page at offset " + ranges[r] + " still holds data");
            }
        }
    }

    @TearDown(Level.Trial)
    public void unmap() {
        arena.close();
    }
}
