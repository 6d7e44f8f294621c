package io.samepage.bench;

import io.samepage.core.DedupEngine;
import io.samepage.core.Guest;
import io.samepage.core.Scanner;
import io.samepage.hashing.Pages;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;

/**
 * {@code scan_threads} 2 against 1 on {@link ScanBenchmark}'s workload (4 guests of 1 GiB, half
 * duplicated, one domain), measured <em>in pairs</em>: one engine, and each pair runs one thread count
 * right after the other (the order alternates from pair to pair), so that the ratio of a pair compares
 * two runs seconds apart. On this machine a JMH run's forks are minutes apart, and its two shared
 * cores' speed drifts by 2x over minutes (see docs/perf/engine.md#scan_threads): JMH's ratio of two
 * forks then measures the drift as much as the threads.
 *
 * <ul>
 *   <li><b>steady</b>: full scans of the converged guests (ScanBenchmark's {@code steadyScan}), as
 *       many as take half a second (at least {@value #STEADY_SCANS}), pages per second. Four scans
 *       took about 45 ms once a steady scan was down to 11 ms: the pairs' ratios then ranged from
 *       0.46 to 1.39 in one report (0.36 to 0.91 in the next).</li>
 *   <li><b>cpu</b>, the reference for the steady row: a loop that touches no memory (a chain of
 *       multiplies, {@link #spin}) on one thread against the same loop on two threads, loops per second,
 *       measured right after each steady run. What the two shared CPUs give together at that moment
 *       bounds what a scan's 2/1 can reach: on this machine one of them ran 15% to 37% slower than the
 *       other for most of a minute, busy or alone (docs/perf/engine.md, twenty-seventh session).</li>
 *   <li><b>merge</b>: every page written (the iteration number in its first 8 bytes), then the two full
 *       scans that merge it all again (ScanBenchmark's {@code mergePasses}), page visits per second.</li>
 *   <li><b>read</b>, the reference for the merge row: {@link ScanBenchmark}'s {@code readBandwidth} (a
 *       sequential sum of the longs of a 1 GiB off-heap region) on one thread, against two threads each
 *       summing one half, 4 KiB pages per second, paired the same way. What two cores read from memory together bounds
 *       a pass that reads guest memory (the merge passes hash and compare every page); a steady scan
 *       reads only the engine's tables.</li>
 *   <li><b>free</b>, the second reference ({@link ParallelDiscard}): the kernel taking back every other
 *       page of a {@value ParallelDiscard#REGION_MIB} MiB region through the frame pool's discard path,
 *       one thread against two threads each freeing one half, pages per second, paired the same way.
 *       The merge passes free a frame per twin pair in this pattern, so their share of kernel time
 *       scales no better than this row. Left out where the kernel takes no memory back (not Linux).</li>
 * </ul>
 * After every measured run the scanner settles ({@link Scanner#scanUntilStable}) and the counters must
 * be exactly those of the converged workload, for either thread count. Before the first pair, one
 * unrecorded round of steady scans and merge passes on each thread count: the first pair's two-thread
 * steady scans ran the workers' code before it was compiled, and were the lowest of their report in
 * seven reports of eight (docs/perf/engine.md, twenty-sixth session).
 *
 * <p>Usage: {@code java --enable-native-access=ALL-UNNAMED -cp jmh-benchmarks/target/benchmarks.jar
 * io.samepage.bench.ScanThreadsReport [OUT_DIR] [--pairs N]} (defaults {@code target/bench}, 7 pairs);
 * writes {@code scan-threads.json} and {@code scan-threads.md} there and prints the table. Needs about
 * 6 GiB of memory; about 3 minutes.
 */
public final class ScanThreadsReport {

    static final double TARGET_MIN_SPEEDUP = 1.6;
    static final int STEADY_SCANS = 4;
    static final long STEADY_NANOS = 500_000_000L;
    static final long SPIN_NANOS = 300_000_000L;

    /** Where the references' sums go, so that no read or loop is optimized away. */
    static volatile long readSink;

    private ScanThreadsReport() {
    }

    public static void main(String[] args) throws IOException {
        Path out = Path.of("target/bench");
        int pairs = 7;
        for (int i = 0; i < args.length; i++) {
            if (args[i].equals("--pairs") && i + 1 < args.length) {
                pairs = Integer.parseInt(args[++i]);
            } else if (args[i].startsWith("--")) {
                throw new IllegalArgumentException("unknown option " + args[i] + "; usage: [OUT_DIR] [--pairs N]");
            } else {
                out = Path.of(args[i]);
            }
        }
        if (pairs < 1) {
            throw new IllegalArgumentException("--pairs " + pairs + ": at least 1");
        }
        long bytes = ScanBenchmark.GUESTS * ScanBenchmark.GUEST_BYTES;
        try (DedupEngine engine = EngineWorkload.engine(bytes, false); ScanBenchmark.ReadRegion read = new ScanBenchmark.ReadRegion();
                ParallelDiscard discard = ParallelDiscard.available() ? new ParallelDiscard() : null) {
            read.fill();
            Guest[] guests = EngineWorkload.writeHalfDuplicated(engine, ScanBenchmark.GUESTS, ScanBenchmark.GUEST_BYTES);
            Scanner scanner = engine.scanner();
            for (int scan = 0; scan < 3; scan++) {
                scanner.scanFullPass();
            }
            EngineWorkload.requireConverged(engine, ScanBenchmark.PAGES, "after setup");
            long stamp = 0;
            for (int threads = 2; threads >= 1; threads--) {     // warm-up, not recorded
                engine.knobs().scanThreads(threads);
                steadyPagesPerSecond(scanner);
                settle(engine, "warm-up steady scans on " + threads + " threads");
                mergeVisitsPerSecond(guests, scanner, ++stamp);
                settle(engine, "warm-up merge passes on " + threads + " threads");
            }
            double[][] steady = new double[2][pairs];
            double[][] merge = new double[2][pairs];
            double[][] cpu = new double[2][pairs];
            double[][] reads = new double[2][pairs];
            double[][] frees = discard == null ? null : new double[2][pairs];
            for (int pair = 0; pair < pairs; pair++) {
                for (int k = 0; k < 2; k++) {
                    int t = pair % 2 == 0 ? k : 1 - k;         // 1, 2 then 2, 1: drift favours neither
                    engine.knobs().scanThreads(t + 1);
                    scanner.scanFullPass();                    // starts the workers, outside the timing
                    steady[t][pair] = steadyPagesPerSecond(scanner);
                    cpu[t][pair] = loopsPerSecond(t + 1);
                    settle(engine, "steady scans on " + (t + 1) + " threads");
                    merge[t][pair] = mergeVisitsPerSecond(guests, scanner, ++stamp);
                    settle(engine, "merge passes on " + (t + 1) + " threads");
                    reads[t][pair] = readPagesPerSecond(read.region, t + 1);
                    if (discard != null) {
                        frees[t][pair] = discard.pagesPerSecond(t + 1);
                    }
                }
            }
            write(out, pairs, steady, cpu, merge, reads, frees);
        }
    }

    private static double steadyPagesPerSecond(Scanner scanner) {
        long start = System.nanoTime();
        long scans = 0;
        long elapsed;
        do {
            scanner.scanFullPass();
            scans++;
            elapsed = System.nanoTime() - start;
        } while (scans < STEADY_SCANS || elapsed < STEADY_NANOS);
        return (double) scans * ScanBenchmark.PAGES * 1e9 / elapsed;
    }

    private static double mergeVisitsPerSecond(Guest[] guests, Scanner scanner, long stamp) {
        MemorySegment first = MemorySegment.ofArray(new long[] {stamp});
        for (Guest guest : guests) {
            for (int page = 0; page < guest.pageCount(); page++) {
                guest.write((long) page << Pages.PAGE_SHIFT, first);
            }
        }
        long start = System.nanoTime();
        scanner.scanFullPass();
        scanner.scanFullPass();
        return 2.0 * ScanBenchmark.PAGES * 1e9 / (System.nanoTime() - start);
    }

    /** Pages per second of {@code threads} threads summing equal parts of {@code region} (the best of 3). */
    static double readPagesPerSecond(MemorySegment region, int threads) {
        long pagesRead = region.byteSize() / Pages.PAGE_SIZE;
        long part = region.byteSize() / threads;
        long best = Long.MAX_VALUE;
        long[] sums = new long[threads];
        for (int round = 0; round < 3; round++) {
            long start = System.nanoTime();
            SideBySide.run(threads, index -> sums[index] = ScanBenchmark.sum(region, index * part, part));
            best = Math.min(best, System.nanoTime() - start);
        }
        readSink = Arrays.stream(sums).sum();      // keeps the sums live
        return pagesRead * 1e9 / best;
    }

    /**
     * Loops per second of {@code threads} threads side by side, each running {@link #spin} for {@value
     * #SPIN_NANOS} ns: what the CPUs give a task that shares nothing and reads no memory. One window, not
     * the best of several, as each steady figure is one window's mean: a CPU slowed for a while by the
     * host slows both.
     */
    static double loopsPerSecond(int threads) {
        long[] loops = new long[threads];
        long start = System.nanoTime();
        SideBySide.run(threads, index -> loops[index] = spin(start + SPIN_NANOS));
        return Arrays.stream(loops).sum() * 1e9 / (System.nanoTime() - start);
    }

    /** Loops of 1,024 dependent multiply-adds until {@code deadline} ({@link System#nanoTime}); how many. */
    static long spin(long deadline) {
        long x = deadline;
        long loops = 0;
        while (System.nanoTime() < deadline) {
            for (int i = 0; i < 1024; i++) {
                x = x * 6364136223846793005L + 1442695040888963407L;
            }
            loops++;
        }
        readSink = x;           // keeps the chain live
        return loops;
    }

    private static void settle(DedupEngine engine, String when) {
        engine.scanner().scanUntilStable(Scanner.DEFAULT_MAX_FULL_SCANS_TO_SETTLE);
        EngineWorkload.requireConverged(engine, ScanBenchmark.PAGES, "after " + when);
    }

    private static void write(Path out, int pairs, double[][] steady, double[][] cpu, double[][] merge,
            double[][] reads, double[][] frees) throws IOException {
        Map<String, Object> json = new LinkedHashMap<>();
        json.put("when", Instant.now().toString());
        json.put("pairs", pairs);
        json.put("pages", ScanBenchmark.PAGES);
        json.put("target_min_speedup", TARGET_MIN_SPEEDUP);
        StringBuilder md = new StringBuilder("| run | 1 thread (median) | 2 threads (median) | 2/1 per pair: median (range) | >= "
                + TARGET_MIN_SPEEDUP + " |\n|---|---|---|---|---|\n");
        Object[][] runs = {{"steady", steady, "pages/s"}, {"cpu", cpu, "loops/s"}, {"merge", merge, "page visits/s"},
            {"read", reads, "pages/s"}, {"free", frees, "pages/s"}};
        for (Object[] run : runs) {
            if (run[1] == null) {
                continue;
            }
            double[][] rates = (double[][]) run[1];
            double[] ratios = new double[pairs];
            for (int pair = 0; pair < pairs; pair++) {
                ratios[pair] = rates[1][pair] / rates[0][pair];
            }
            double ratio = median(ratios);
            Map<String, Object> entry = new LinkedHashMap<>();
            entry.put("unit", run[2]);
            entry.put("one_thread", Arrays.stream(rates[0]).boxed().toList());
            entry.put("two_threads", Arrays.stream(rates[1]).boxed().toList());
            entry.put("ratios", Arrays.stream(ratios).boxed().toList());
            entry.put("median_ratio", ratio);
            boolean reference = !run[0].equals("steady") && !run[0].equals("merge");
            if (!reference) {
                entry.put("met", ratio >= TARGET_MIN_SPEEDUP);
            }
            json.put((String) run[0], entry);
            md.append(String.format(Locale.ROOT, "| %s | %.2f M %s | %.2f M | %.2f (%.2f-%.2f) | %s |%n", run[0],
                    median(rates[0]) / 1e6, run[2], median(rates[1]) / 1e6, ratio,
                    Arrays.stream(ratios).min().orElse(0), Arrays.stream(ratios).max().orElse(0),
                    reference ? "(reference)" : ratio >= TARGET_MIN_SPEEDUP ? "met" : "NOT met"));
        }
        Files.createDirectories(out);
        Files.writeString(out.resolve("scan-threads.json"), Json.write(json));
        Files.writeString(out.resolve("scan-threads.md"), md.toString());
        System.out.print(md);
    }

    static double median(double[] values) {
        double[] sorted = values.clone();
        Arrays.sort(sorted);
        int n = sorted.length;
        return n % 2 == 1 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
    }
}
