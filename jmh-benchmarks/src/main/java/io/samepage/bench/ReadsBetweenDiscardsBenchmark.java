package io.samepage.bench;

import io.samepage.linux.DiscardList;
import io.samepage.linux.NativeMemory;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.SplittableRandom;
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
 * What one discard call costs a scan beyond the pages it frees: a read of a 1 GiB region (a sum of its
 * longs, as {@code ScanBenchmark.readBandwidth}), one flat loop over each run of {@code pagesBetween}
 * pages, with one call of the frame pool's discard path ({@link DiscardList}: {@code
 * process_madvise(MADV_DONTNEED)}) freeing a single page of a separate region after each run, as the
 * scanner frees each batch's frames between reads. {@code pagesBetween = 0} makes no call and reads in
 * runs of {@value #CHUNK} pages: the reference. The read is its own method, the same for every
 * parameter: with the page loop nested in the loop that made the calls, C2 compiled the reads about
 * 100 ns a page slower whenever a call was reachable, which this benchmark once reported as a cost of
 * the kernel's (docs/perf/engine.md). Scored in nanoseconds per page
 * read, discards included; {@code (score - reference) x pagesBetween} is what one call costs, in the
 * call and in the reads after it. The page each call frees is written just before it, so the kernel
 * always has a page to take back; writing it costs a few nanoseconds, the same in every case but the
 * reference.
 */
@State(Scope.Thread)
@Fork(value = 1, jvmArgsAppend = "--enable-native-access=ALL-UNNAMED")
@BenchmarkMode(Mode.SingleShotTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Warmup(iterations = 3)
@Measurement(iterations = 10)
public class ReadsBetweenDiscardsBenchmark {

    static final long REGION_BYTES = 1L << 30;
    static final int PAGE = 4096;
    static final int PAGES = (int) (REGION_BYTES / PAGE);
    static final long SIDE_BYTES = 2L << 20;
    /** The reference reads in runs of this many pages, as a scan batch does. */
    static final int CHUNK = 4096;

    @Param({"0", "4096", "512", "64"})
    public int pagesBetween;

    private Arena arena;
    private MemorySegment region;
    private MemorySegment side;
    private DiscardList list;
    private long sideOffset;

    @Setup(Level.Trial)
    public void map() {
        arena = Arena.ofShared();
        region = NativeMemory.reserve(REGION_BYTES, 0, arena);
        SplittableRandom random = new SplittableRandom(7);
        for (long off = 0; off < REGION_BYTES; off += Long.BYTES) {
            region.set(ValueLayout.JAVA_LONG, off, random.nextLong());
        }
        side = NativeMemory.reserve(SIDE_BYTES, 0, arena);
        list = new DiscardList(side, arena);
    }

    @Benchmark
    @OperationsPerInvocation(PAGES)
    public long readAndDiscard() {
        long total = 0;
        int step = pagesBetween > 0 ? pagesBetween : CHUNK;
        for (int page = 0; page < PAGES; page += step) {
            total += read(page, Math.min(PAGES, page + step));
            if (pagesBetween > 0) {
                discardOne(page);
            }
        }
        return total;
    }

    /** Sums pages {@code [from, to)}: one flat loop, the same for every {@code pagesBetween}. */
    private long read(int from, int to) {
        long total = 0;
        for (long off = (long) from * PAGE; off < (long) to * PAGE; off += Long.BYTES) {
            total += region.get(ValueLayout.JAVA_LONG, off);
        }
        return total;
    }

    private void discardOne(int page) {
        side.set(ValueLayout.JAVA_LONG, sideOffset, page);
        list.add(sideOffset, PAGE);
        list.discard();
        sideOffset = (sideOffset + PAGE) % SIDE_BYTES;
    }

    /** Checks that the calls gave their pages back: the last page written reads as zeros again. */
    @TearDown(Level.Iteration)
    public void verify() {
        if (pagesBetween > 0) {
            long last = (sideOffset - PAGE + SIDE_BYTES) % SIDE_BYTES;
            if (side.get(ValueLayout.JAVA_LONG, last) != 0) {
                throw new IllegalStateException("the page discarded last, at offset " + last + ", still holds data");
            }
        }
    }

    @TearDown(Level.Trial)
    public void unmap() {
        arena.close();
    }
}
