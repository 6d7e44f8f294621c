package io.samepage.bench;

import io.samepage.core.DedupEngine;
import io.samepage.core.EngineContext;
import io.samepage.core.Guest;
import io.samepage.hashing.CrcCollisions;
import io.samepage.hashing.HashAlgorithm;
import io.samepage.hashing.Pages;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.SplittableRandom;

/**
 * Hash flooding, measured: three full scans of {@value #PAGES} distinct random pages beside three of
 * {@value #PAGES} distinct pages crafted to collide under CRC32C (XOR combinations of CRC kernel
 * vectors, {@link CrcCollisions}: whatever the seed), under CRC32C and under the default hash. It
 * prints and writes ({@code target/bench/flood.md}) the full page compares each made
 * ({@code DedupEngine.pagesCompared}) and the median time of {@value #RUNS} runs, and the ratios
 * crafted / random. Run: {@code $JAVA --enable-native-access=ALL-UNNAMED -cp
 * jmh-benchmarks/target/benchmarks.jar io.samepage.bench.FloodReport}.
 */
public final class FloodReport {

    static final int PAGES = 10_000;
    static final int RUNS = 5;
    private static final int SCANS = 3;
    private static final int PAGE = Pages.PAGE_SIZE;

    private FloodReport() {
    }

    public static void main(String[] args) throws IOException {
        byte[][] random = new byte[PAGES][PAGE];
        SplittableRandom rnd = new SplittableRandom(1);
        for (byte[] page : random) {
            rnd.nextBytes(page);
        }
        CrcCollisions collisions = new CrcCollisions();
        byte[] base = new byte[PAGE];
        rnd.nextBytes(base);
        byte[][] crafted = new byte[PAGES][];
        for (int i = 0; i < PAGES; i++) {
            crafted[i] = collisions.page(base, i + 1);
        }
        StringBuilder md = new StringBuilder("| hash | pages | compares | median ms (" + RUNS + " runs) |\n|---|---|---:|---:|\n");
        StringBuilder ratios = new StringBuilder();
        for (HashAlgorithm algorithm : new HashAlgorithm[] {HashAlgorithm.CRC32C, HashAlgorithm.defaultAlgorithm()}) {
            long[] randomRun = measure(algorithm, random);
            long[] craftedRun = measure(algorithm, crafted);
            md.append(row(algorithm, "random", randomRun)).append(row(algorithm, "crafted against CRC32C", craftedRun));
            ratios.append(String.format("- %s (default: %s): crafted / random = %.2fx compares (%d / %d), %.2fx time%n",
                    algorithm, algorithm == HashAlgorithm.defaultAlgorithm(), (double) craftedRun[0] / Math.max(1, randomRun[0]),
                    craftedRun[0], randomRun[0], (double) craftedRun[1] / randomRun[1]));
        }
        String report = md + "\n" + ratios;
        System.out.print(report);
        Path out = Path.of("target", "bench", "flood.md");
        Files.createDirectories(out.getParent());
        Files.writeString(out, report);
    }

    private static String row(HashAlgorithm algorithm, String pages, long[] run) {
        return String.format("| %s | %d %s | %d | %.1f |%n", algorithm, PAGES, pages, run[0], run[1] / 1e6);
    }

    /** {compares of one run, median nanoseconds} for {@value #SCANS} full scans of {@code contents}. */
    private static long[] measure(HashAlgorithm algorithm, byte[][] contents) {
        long[] nanos = new long[RUNS];
        long compares = 0;
        for (int run = 0; run < RUNS; run++) {
            EngineContext context = new EngineContext().poolBytes(128L << 20).hashAlgorithm(algorithm);
            context.knobs().smartScan(false);
            try (DedupEngine engine = DedupEngine.create(context.conclude())) {
                Guest guest = engine.createGuest(engine.createDomain("tenant"), "flood", (long) contents.length * PAGE);
                for (int p = 0; p < contents.length; p++) {
                    guest.write((long) p * PAGE, contents[p], 0, PAGE);
                }
                long before = engine.pagesCompared();
                long start = System.nanoTime();
                for (int i = 0; i < SCANS; i++) {
                    engine.scanner().scanFullPass();
                }
                nanos[run] = System.nanoTime() - start;
                compares = engine.pagesCompared() - before;
            }
        }
        Arrays.sort(nanos);
        return new long[] {compares, nanos[RUNS / 2]};
    }
}
