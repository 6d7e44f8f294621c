package io.samepage.bench;

import io.samepage.hashing.ContentDigest;
import io.samepage.hashing.HashAlgorithm;
import io.samepage.hashing.PageHasher;
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
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

/**
 * Page hashing against the read bandwidth of one core, over the same 256 MiB off-heap region of
 * random 4 KiB pages (seed {@value #SEED}; the second half repeats the first, so page
 * compares run to the end). One operation is one byte, so every score is bytes per
 * second. {@code readBandwidth} (a plain sequential sum of longs) is the physical limit the hashers
 * are judged against; {@link HashingReport} turns a run into a table of GB/s and ratios.
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.SECONDS)
@OperationsPerInvocation(HashingBenchmark.REGION_BYTES)
@Warmup(iterations = 3, time = 2)
@Measurement(iterations = 5, time = 2)
@Fork(value = 1, jvmArgsAppend = "--enable-native-access=ALL-UNNAMED")
public class HashingBenchmark {

    static final int REGION_BYTES = 256 << 20;
    static final long SEED = 0x5A3E_9A6EL;
    private static final int PAGES = REGION_BYTES / Pages.PAGE_SIZE;
    private static final long HALF = REGION_BYTES / 2;

    private Arena arena;
    private MemorySegment region;
    private PageHasher defaultHasher;
    private PageHasher xxh64;
    private PageHasher xxh3;
    private PageHasher komihash;
    private PageHasher crc32c;
    private PageHasher nh;
    private ScalarNh scalarNh;
    private ContentDigest sha256;
    private final byte[] digest = new byte[ContentDigest.LENGTH];

    @Setup(Level.Trial)
    public void setUp() {
        arena = Arena.ofShared();
        region = arena.allocate(REGION_BYTES, Pages.PAGE_SIZE);
        SplittableRandom random = new SplittableRandom(SEED);
        for (long off = 0; off < HALF; off += Long.BYTES) {
            region.set(ValueLayout.JAVA_LONG_UNALIGNED, off, random.nextLong());
        }
        region.asSlice(HALF, HALF).copyFrom(region.asSlice(0, HALF));
        long key = random.nextLong();
        defaultHasher = HashAlgorithm.defaultAlgorithm().newHasher(key);
        xxh64 = HashAlgorithm.XXH64.newHasher(key);
        xxh3 = HashAlgorithm.XXH3.newHasher(key);
        komihash = HashAlgorithm.KOMIHASH.newHasher(key);
        crc32c = HashAlgorithm.CRC32C.newHasher(key);
        nh = HashAlgorithm.NH.newHasher(key);
        scalarNh = new ScalarNh(key);
        sha256 = new ContentDigest();
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

    /**
     * A second reference: the same sum over two interleaved streams (first and second half). On a
     * virtual machine one stream may not reach the memory system's limit; this shows how far off it is.
     */
    @Benchmark
    public long readTwoStreams() {
        long first = 0;
        long second = 0;
        for (long off = 0; off < HALF; off += Long.BYTES) {
            first += region.get(ValueLayout.JAVA_LONG_UNALIGNED, off);
            second += region.get(ValueLayout.JAVA_LONG_UNALIGNED, off + HALF);
        }
        return first + second;
    }

    /**
     * Full compare of every page in the first half with its equal twin in the second half: the work
     * after a hash hit, which reads both pages to the end because they are equal. Every byte of the
     * region is read once.
     */
    @Benchmark
    public int comparePages() {
        int equal = 0;
        for (long off = 0; off < HALF; off += Pages.PAGE_SIZE) {
            equal += Pages.equal(region, off, region, off + HALF) ? 1 : 0;
        }
        return equal;
    }

    @Benchmark
    public long defaultHasher() {
        return hashAll(defaultHasher);
    }

    @Benchmark
    public long xxh64() {
        return hashAll(xxh64);
    }

    @Benchmark
    public long xxh3() {
        return hashAll(xxh3);
    }

    @Benchmark
    public long komihash() {
        return hashAll(komihash);
    }

    @Benchmark
    public long crc32c() {
        return hashAll(crc32c);
    }

    @Benchmark
    public long nh() {
        return hashAll(nh);
    }

    /** NH as it was before it was vectorized: the reference for {@link #nh}'s gain. */
    @Benchmark
    public long nhScalar() {
        long acc = 0;
        for (int page = 0; page < PAGES; page++) {
            acc += scalarNh.hash(region, (long) page << Pages.PAGE_SHIFT);
        }
        return acc;
    }

    /** SHA-256 content digest, for scale: the identity hash of the image index. */
    @Benchmark
    public int sha256() {
        int acc = 0;
        for (long off = 0; off < REGION_BYTES; off += Pages.PAGE_SIZE) {
            sha256.digest(region, off, digest, 0);
            acc += digest[0];
        }
        return acc;
    }

    private long hashAll(PageHasher hasher) {
        long acc = 0;
        for (int page = 0; page < PAGES; page++) {
            acc += hasher.hash(region, (long) page << Pages.PAGE_SHIFT);
        }
        return acc;
    }
}
