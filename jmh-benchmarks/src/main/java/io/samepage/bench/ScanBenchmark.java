package io.samepage.bench;

import io.samepage.core.DedupEngine;
import io.samepage.core.EngineCounters;
import io.samepage.core.Guest;
import io.samepage.core.Scanner;
import io.samepage.hashing.Pages;
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
 * Scanner throughput on {@code threads} scanner threads ({@code scan_threads}, 1 and 2 by default) over {@value #GUESTS} guests of 1 GiB (4 GiB, {@value #PAGES}
 * guest pages) in one domain, half of the pages duplicated and half unique ({@link EngineWorkload}),
 * against the read bandwidth of one core measured in the same run. One operation is one guest page
 * visited, so {@code steadyScan*} and {@code readBandwidth} score pages per second and
 * {@code mergePasses} scores nanoseconds per page visit; {@link EngineReport} turns them into pages/s,
 * GB/s of guest memory (pages/s &times; 4096) and ratios to {@code readBandwidth}.
 *
 * <ul>
 *   <li>{@code mergePasses}: from written guests to converged, the two full scans KSM's volatility
 *       rule needs (the first records each page's hash, the second merges the pages whose hash held).
 *       The state is rebuilt before every iteration without refilling 4 GiB: the setup writes the
 *       iteration number into the first 8 bytes of every page. That breaks every shared frame
 *       (copy-on-write) and changes every page's hash, so the measured scans redo exactly the work of a
 *       first merge: a first visit that finds each hash changed, then a visit that merges. (Unmerging
 *       with {@code run=2} would not: the engine keeps each page's last hash across it, so the first
 *       scan after {@code run=1} merges at once.) A single shot: 2 &times; {@value #PAGES} visits.</li>
 *   <li>{@code steadyScan}: one full scan after convergence: merged pages are checked, and unique pages,
 *       unwritten since their last hash, are looked up in both indexes by the key they keep, without a
 *       read of their bytes (the engine sees every write). {@code smart_scan} is off, as in every state here except
 *       {@code steadyScanSmart}, which shows what KSM's default {@code smart_scan=1} saves once the
 *       unique pages have aged (it skips them for up to 8 of 9 visits).</li>
 *   <li>{@code readBandwidth}: the reference, a sequential sum of longs over a 1 GiB off-heap region
 *       of random data, scored per 4 KiB page read. 1 GiB rather than HashingBenchmark's 256 MiB: this
 *       machine's CPU reports a 300 MiB L3, and the scanner reads 4 GiB from memory, not from cache.</li>
 * </ul>
 * Setup writes 4 GiB once per trial (a fork), so a fork needs about 4.5 GiB of RAM.
 */
@State(Scope.Thread)
@Fork(value = 1, jvmArgsAppend = "--enable-native-access=ALL-UNNAMED")
public class ScanBenchmark {

    static final int GUESTS = 4;
    static final long GUEST_BYTES = 1L << 30;
    static final int PAGES = (int) (GUESTS * GUEST_BYTES >>> Pages.PAGE_SHIFT);
    static final int READ_REGION_BYTES = 1 << 30;
    static final int READ_PAGES = READ_REGION_BYTES / Pages.PAGE_SIZE;

    /** The written guests; subclasses choose {@code smart_scan} and what happens once they are written. */
    @State(Scope.Thread)
    public static class WrittenGuests {
        /** {@code scan_threads}: the threads that share each batch (1 is KSM's one ksmd). */
        @Param({"1", "2"})
        int threads;

        DedupEngine engine;
        Scanner scanner;
        Guest[] guests;

        @Setup(Level.Trial)
        public void write() {
            engine = EngineWorkload.engine(GUESTS * GUEST_BYTES, smartScan());
            engine.knobs().scanThreads(threads);
            scanner = engine.scanner();
            guests = EngineWorkload.writeHalfDuplicated(engine, GUESTS, GUEST_BYTES);
            afterWrite();
        }

        boolean smartScan() {
            return false;
        }

        void afterWrite() {
        }

        @TearDown(Level.Trial)
        public void close() {
            engine.close();
        }
    }

    /** Before every iteration: every page changed since its last visit and nothing merged. */
    @State(Scope.Thread)
    public static class Dirty extends WrittenGuests {
        private final MemorySegment stamp = MemorySegment.ofArray(new long[1]);
        private long iteration;

        @Setup(Level.Iteration)
        public void dirty() {
            stamp.set(ValueLayout.JAVA_LONG, 0, ++iteration);
            for (Guest guest : guests) {
                for (int page = 0; page < guest.pageCount(); page++) {
                    guest.write((long) page << Pages.PAGE_SHIFT, stamp);
                }
            }
            EngineCounters c = engine.counters();
            if (c.pagesShared() != 0 || c.pagesSharing() != 0) {
                throw new IllegalStateException("dirtying the guests left frames shared: " + c);
            }
        }

        /**
         * On one thread the two passes merge everything. On several, a page that read the stable filter
         * while another thread filed its twin's frame waits for its next visit, so the scanner first
         * settles (not measured) and must then hold exactly the counters one thread reaches.
         */
        @TearDown(Level.Iteration)
        public void verify() {
            if (threads > 1) {
                scanner.scanUntilStable(Scanner.DEFAULT_MAX_FULL_SCANS_TO_SETTLE);
            }
            EngineWorkload.requireConverged(engine, PAGES, "after the measured merge passes");
        }
    }

    /** Merged in setup (two full scans, and one more); every measured scan finds the same state. */
    @State(Scope.Thread)
    public static class Converged extends WrittenGuests {

        @Override
        void afterWrite() {
            for (int scan = 0; scan < convergenceScans(); scan++) {
                scanner.scanFullPass();
            }
            check("after setup");
        }

        void check(String when) {
            EngineWorkload.requireConverged(engine, PAGES, when);
        }

        int convergenceScans() {
            return 3;
        }

        @TearDown(Level.Iteration)
        public void verify() {
            if (threads > 1) {
                scanner.scanUntilStable(Scanner.DEFAULT_MAX_FULL_SCANS_TO_SETTLE);
            }
            check("after the measured scans");
        }
    }

    /**
     * Converged with {@code smart_scan} on, then scanned until every unique page has reached the
     * longest skip (age 15: 2 merging scans and 16 more).
     */
    @State(Scope.Thread)
    public static class SmartConverged extends Converged {

        @Override
        boolean smartScan() {
            return true;
        }

        @Override
        int convergenceScans() {
            return 18;
        }

        @Override
        void check(String when) {
            EngineWorkload.requireMerged(engine, PAGES, when);
        }
    }

    /** The reference region: 1 GiB of random longs off-heap. */
    @State(Scope.Thread)
    public static class ReadRegion implements AutoCloseable {
        Arena arena;
        MemorySegment region;

        @Setup(Level.Trial)
        public void fill() {
            arena = Arena.ofShared();
            region = arena.allocate(READ_REGION_BYTES, Pages.PAGE_SIZE);
            SplittableRandom random = new SplittableRandom(EngineWorkload.SEED);
            for (long off = 0; off < READ_REGION_BYTES; off += Long.BYTES) {
                region.set(ValueLayout.JAVA_LONG_UNALIGNED, off, random.nextLong());
            }
        }

        @TearDown(Level.Trial)
        @Override
        public void close() {
            arena.close();
        }
    }

    @Benchmark
    @BenchmarkMode(Mode.SingleShotTime)
    @OutputTimeUnit(TimeUnit.NANOSECONDS)
    @OperationsPerInvocation(2 * PAGES)
    @Warmup(iterations = 2)
    @Measurement(iterations = 6)
    public long mergePasses(Dirty state) {
        state.scanner.scanFullPass();
        state.scanner.scanFullPass();
        return state.scanner.merges();
    }

    @Benchmark
    @BenchmarkMode(Mode.Throughput)
    @OutputTimeUnit(TimeUnit.SECONDS)
    @OperationsPerInvocation(PAGES)
    @Warmup(iterations = 2, time = 2)
    @Measurement(iterations = 6, time = 2)
    public long steadyScan(Converged state) {
        state.scanner.scanFullPass();
        return state.scanner.pagesScanned();
    }

    @Benchmark
    @BenchmarkMode(Mode.Throughput)
    @OutputTimeUnit(TimeUnit.SECONDS)
    @OperationsPerInvocation(PAGES)
    @Warmup(iterations = 2, time = 2)
    @Measurement(iterations = 6, time = 2)
    public long steadyScanSmart(SmartConverged state) {
        state.scanner.scanFullPass();
        return state.scanner.pagesScanned();
    }

    /** The reference: a sequential sum of every long in the region, scored per 4 KiB page. */
    @Benchmark
    @BenchmarkMode(Mode.Throughput)
    @OutputTimeUnit(TimeUnit.SECONDS)
    @OperationsPerInvocation(READ_PAGES)
    @Warmup(iterations = 3, time = 1)
    @Measurement(iterations = 6, time = 2)
    public long readBandwidth(ReadRegion state) {
        return sum(state.region, 0, READ_REGION_BYTES);
    }

    /** The sum of the longs of {@code region} from {@code from}, {@code length} bytes: a sequential read. */
    static long sum(MemorySegment region, long from, long length) {
        long sum = 0;
        for (long off = from; off < from + length; off += Long.BYTES) {
            sum += region.get(ValueLayout.JAVA_LONG_UNALIGNED, off);
        }
        return sum;
    }
}
