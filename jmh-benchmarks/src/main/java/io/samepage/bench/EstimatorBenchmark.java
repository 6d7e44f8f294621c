package io.samepage.bench;

import io.samepage.hashing.HashAlgorithm;
import io.samepage.hashing.PageDigest;
import io.samepage.hashing.PageHasher;
import io.samepage.hashing.Pages;
import io.samepage.host.PageDigestEstimator;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
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
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

/**
 * What the streaming estimator ({@code scan --pid}, {@code --qemu}) costs per byte read, and what a
 * placement sketch adds to it, against the read bandwidth of one core. The region is 256 MiB of random
 * 4 KiB pages (seed {@value #SEED}) whose second half repeats the first, so the digest table sees each
 * content twice. One operation is one byte: every score is bytes per second; {@link EstimatorReport}
 * turns a run into GB/s, CPU-seconds per GiB and ratios to {@code readBandwidth}.
 *
 * <ul>
 *   <li>{@code readBandwidth}: a sequential sum of longs, the reference.</li>
 *   <li>{@code pageDigest}: {@link PageDigest#digest} on every page, the estimator's hash without a sketch.</li>
 *   <li>{@code pageDigestThenXxh3}: the same, then unkeyed XXH3-64 of each page (a sketch hash read
 *       from the page a second time).</li>
 *   <li>{@code pageDigestThenSketchHash}: {@link PageDigest#digest}, then {@link PageDigest#sketchHash}
 *       (NH under a public key) in a loop of its own over the page the first loop brought into the cache.</li>
 *   <li>{@code threeSumsInOneLoop}: the rejected form of the same work, the three NH sums in one loop
 *       (keys of its own: the speed does not depend on them).</li>
 *   <li>{@code estimator}: a fresh {@link PageDigestEstimator} sized for the region, fed all of it as
 *       one guest: zero test, digest, table, and whatever sketch the estimator keeps at this commit.</li>
 * </ul>
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.SECONDS)
@OperationsPerInvocation(EstimatorBenchmark.REGION_BYTES)
@Warmup(iterations = 3, time = 2)
@Measurement(iterations = 5, time = 2)
@Fork(value = 1, jvmArgsAppend = "--enable-native-access=ALL-UNNAMED")
public class EstimatorBenchmark {

    static final int REGION_BYTES = 256 << 20;
    static final long SEED = 0x5CE7_C4L;
    private static final int PAGES = REGION_BYTES / Pages.PAGE_SIZE;
    private static final long HALF = REGION_BYTES / 2;
    private static final int WORDS = Pages.PAGE_SIZE / Long.BYTES;
    private static final long LOW = 0xFFFF_FFFFL;
    private static final long HIGH = ~LOW;
    private static final ValueLayout.OfLong WORD = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    private Arena arena;
    private MemorySegment region;
    private PageDigest digest;
    private PageHasher xxh3;
    private final long[] out = new long[2];
    private final long[][] keys = new long[3][WORDS];

    @Setup(Level.Trial)
    public void setUp() {
        arena = Arena.ofShared();
        region = arena.allocate(REGION_BYTES, Pages.PAGE_SIZE);
        SplittableRandom random = new SplittableRandom(SEED);
        for (long off = 0; off < HALF; off += Long.BYTES) {
            region.set(ValueLayout.JAVA_LONG_UNALIGNED, off, random.nextLong());
        }
        region.asSlice(HALF, HALF).copyFrom(region.asSlice(0, HALF));
        digest = new PageDigest(random.nextLong());
        xxh3 = HashAlgorithm.XXH3.newHasher(0);
        for (long[] key : keys) {
            for (int i = 0; i < WORDS; i++) {
                key[i] = random.nextLong();
            }
        }
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        arena.close();
    }

    /** The reference: a sequential sum of every long in the region. */
    @Benchmark
    public long readBandwidth() {
        long sum = 0;
        for (long off = 0; off < REGION_BYTES; off += Long.BYTES) {
            sum += region.get(ValueLayout.JAVA_LONG_UNALIGNED, off);
        }
        return sum;
    }

    @Benchmark
    public long pageDigest() {
        long acc = 0;
        for (int page = 0; page < PAGES; page++) {
            digest.digest(region, (long) page << Pages.PAGE_SHIFT, out);
            acc += out[0] ^ out[1];
        }
        return acc;
    }

    @Benchmark
    public long pageDigestThenXxh3() {
        long acc = 0;
        for (int page = 0; page < PAGES; page++) {
            long offset = (long) page << Pages.PAGE_SHIFT;
            digest.digest(region, offset, out);
            acc += out[0] ^ out[1] ^ xxh3.hash(region, offset);
        }
        return acc;
    }

    @Benchmark
    public long pageDigestThenSketchHash() {
        long acc = 0;
        for (int page = 0; page < PAGES; page++) {
            long offset = (long) page << Pages.PAGE_SHIFT;
            digest.digest(region, offset, out);
            acc += out[0] ^ out[1] ^ PageDigest.sketchHash(region, offset);
        }
        return acc;
    }

    @Benchmark
    public long threeSumsInOneLoop() {
        long acc = 0;
        for (int page = 0; page < PAGES; page++) {
            acc += threeSums((long) page << Pages.PAGE_SHIFT);
        }
        return acc;
    }

    /** {@link PageDigest#digest}'s loop with a third NH sum in it. */
    private long threeSums(long offset) {
        long[] k1 = keys[0];
        long[] k2 = keys[1];
        long[] k3 = keys[2];
        long a = 0;
        long b = 0;
        long c = 0;
        for (int i = 0; i < WORDS; i++) {
            long m = region.get(WORD, offset + ((long) i << 3));
            long x = k1[i];
            long y = k2[i];
            long z = k3[i];
            a += ((m + x) & LOW) * ((m + (x & HIGH)) >>> 32);
            b += ((m + y) & LOW) * ((m + (y & HIGH)) >>> 32);
            c += ((m + z) & LOW) * ((m + (z & HIGH)) >>> 32);
        }
        return a ^ b ^ c;
    }

    @Benchmark
    public long estimator() {
        PageDigestEstimator estimator = new PageDigestEstimator(PAGES);
        estimator.beginGuest("region");
        estimator.accept(region);
        return estimator.estimate(256, false).pagesSharing();
    }
}
