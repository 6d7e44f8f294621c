package io.samepage.bench;

import io.samepage.core.DedupEngine;
import io.samepage.core.EngineCounters;
import io.samepage.core.Guest;
import io.samepage.core.Scanner;
import io.samepage.hashing.Pages;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

/**
 * A full scan of one sparse guest: {@value #GUEST_BYTES} bytes ({@value #PAGES} pages), as a
 * WebAssembly instance that reserved 4 GiB of linear memory, of which it wrote {@code written} pages
 * (12,800 is 50 MiB) in runs of {@value #RUN_PAGES} spread evenly over it, every page unique
 * ({@link EngineWorkload#fillPage}), converged in setup. {@code sparseFullScan} scores the time of one
 * steady full scan ({@link Scanner#scanFullPass}): the written pages are visited (clean: a lookup, no
 * read), the rest are passed by. With {@code written=0} it is the cost of passing a guest's never-written
 * pages by, per {@value #PAGES} pages.
 */
@State(Scope.Thread)
@Fork(value = 1, jvmArgsAppend = "--enable-native-access=ALL-UNNAMED")
public class SparseGuestBenchmark {

    static final long GUEST_BYTES = 4L << 30;
    static final int PAGES = (int) (GUEST_BYTES >>> Pages.PAGE_SHIFT);
    static final int RUN_PAGES = 512;

    /** {@code scan_threads}. */
    @Param({"1"})
    int threads;

    /** Pages written, a multiple of {@value #RUN_PAGES}. */
    @Param({"0", "12800"})
    int written;

    DedupEngine engine;
    Scanner scanner;
    EngineCounters settled;

    @Setup(Level.Trial)
    public void write() {
        if (written % RUN_PAGES != 0) {
            throw new IllegalArgumentException("written " + written + ": must be a multiple of " + RUN_PAGES);
        }
        engine = EngineWorkload.engine((long) written * Pages.PAGE_SIZE, false);
        engine.knobs().scanThreads(threads);
        scanner = engine.scanner();
        Guest guest = engine.createGuest(engine.createDomain("bench"), "sparse", GUEST_BYTES);
        int runs = written / RUN_PAGES;
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment page = arena.allocate(Pages.PAGE_SIZE, Pages.PAGE_SIZE);
            for (int r = 0; r < runs; r++) {
                int first = (int) ((long) PAGES * r / runs);
                for (int p = first; p < first + RUN_PAGES; p++) {
                    EngineWorkload.fillPage(page, p);
                    guest.write((long) p << Pages.PAGE_SHIFT, page);
                }
            }
        }
        for (int scan = 0; scan < 3; scan++) {
            scanner.scanFullPass();
        }
        settled = engine.counters();
        if (settled.pagesUnshared() != written || settled.pagesVolatile() != 0) {
            throw new IllegalStateException("expected all " + written + " written pages in the unstable index, got " + settled);
        }
    }

    /** Every measured scan must find the state of setup: the written pages unique and clean. */
    @TearDown(Level.Iteration)
    public void verify() {
        EngineCounters c = engine.counters();
        if (c.pagesUnshared() != written || c.pagesVolatile() != 0 || c.pagesSharing() != 0) {
            throw new IllegalStateException("the measured scans changed the guest's state: " + c);
        }
    }

    @TearDown(Level.Trial)
    public void close() {
        engine.close();
    }

    @Benchmark
    @BenchmarkMode(Mode.AverageTime)
    @OutputTimeUnit(TimeUnit.MICROSECONDS)
    @Warmup(iterations = 2, time = 2)
    @Measurement(iterations = 5, time = 2)
    public long sparseFullScan() {
        scanner.scanFullPass();
        return scanner.pagesScanned();
    }
}
