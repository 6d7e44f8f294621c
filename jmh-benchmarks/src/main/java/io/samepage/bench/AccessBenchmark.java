package io.samepage.bench;

import io.samepage.core.DedupEngine;
import io.samepage.core.EngineContext;
import io.samepage.core.FramePool;
import io.samepage.core.Guest;
import io.samepage.core.GuestAccess;
import io.samepage.hashing.Pages;
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
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

/**
 * The embedder access path ({@link GuestAccess}) on a cached private page, beside a plain
 * {@link MemorySegment} access to one off-heap page (the reference: what an emulator's own memory
 * costs) and beside {@link Guest#read}/{@link Guest#write} (the copying path), in one run.
 *
 * <ul>
 *   <li>{@code *ReadInt}, {@code *WriteInt}: one 4-byte little-endian access at the next 8-byte
 *       offset of the page, so every access hits the L1 cache; the scanner is not running.</li>
 *   <li>{@code *ReadPage}, {@code *WritePage}: all 4096 bytes of the page copied to or from a heap
 *       array.</li>
 * </ul>
 * {@code frame*}: the same plain accesses on a frame of a {@link FramePool} of its own (the memory the
 * guest's frames are, with no page table): what the access path adds to the memory it reaches.
 *
 * <p>The guest's page is private and dirty and its translation is cached before the first measured
 * access, so every access of the access path takes its fast path: reads check the page's epoch and
 * take no lock, writes take the page's stripe shared.
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 8, time = 1)
@Fork(value = 1, jvmArgsAppend = "--enable-native-access=ALL-UNNAMED")
public class AccessBenchmark {

    private static final ValueLayout.OfInt INT = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final int PAGE = Pages.PAGE_SIZE;

    private DedupEngine engine;
    private Guest guest;
    private GuestAccess access;
    private Arena arena;
    private MemorySegment plain;
    /** A frame of a pool of its own: the same kind of memory as the guest's frames, with no page table. */
    private FramePool framePool;
    private MemorySegment frames;
    private final MemorySegment four = MemorySegment.ofArray(new byte[4]);
    private final byte[] page = new byte[PAGE];
    private long offset;

    @Setup(Level.Trial)
    public void create() {
        engine = DedupEngine.create(new EngineContext().poolBytes(16L << 20).conclude());
        guest = engine.createGuest(engine.createDomain("bench"), "vm", 16L * PAGE);
        new SplittableRandom(1).nextBytes(page);
        guest.write(0, page, 0, PAGE);
        access = guest.access();
        access.writeInt(0, access.readInt(0));      // caches the writable translation
        arena = Arena.ofConfined();
        plain = arena.allocate(PAGE, PAGE);
        MemorySegment.copy(MemorySegment.ofArray(page), 0, plain, 0, PAGE);
        framePool = new FramePool(16L << 20);
        frames = framePool.memory();
        MemorySegment.copy(MemorySegment.ofArray(page), 0, frames, FramePool.offsetOf(1), PAGE);
    }

    @TearDown(Level.Trial)
    public void close() {
        engine.close();
        arena.close();
        framePool.close();
    }

    private long next() {
        offset = (offset + 8) & (PAGE - 8);
        return offset;
    }

    @Benchmark
    public int plainReadInt() {
        return plain.get(INT, next());
    }

    @Benchmark
    public int frameReadInt() {
        return frames.get(INT, PAGE + next());
    }

    @Benchmark
    public int accessReadInt() {
        return access.readInt(next());
    }

    @Benchmark
    public byte guestReadInt() {
        guest.read(next(), four);
        return four.get(ValueLayout.JAVA_BYTE, 0);
    }

    @Benchmark
    public void plainWriteInt() {
        long at = next();
        plain.set(INT, at, (int) at);
    }

    @Benchmark
    public void frameWriteInt() {
        long at = next();
        frames.set(INT, PAGE + at, (int) at);
    }

    @Benchmark
    public void accessWriteInt() {
        long at = next();
        access.writeInt(at, (int) at);
    }

    @Benchmark
    public void guestWriteInt() {
        long at = next();
        four.set(INT, 0, (int) at);
        guest.write(at, four);
    }

    @Benchmark
    public byte[] plainReadPage() {
        MemorySegment.copy(plain, ValueLayout.JAVA_BYTE, 0, page, 0, PAGE);
        return page;
    }

    @Benchmark
    public byte[] frameReadPage() {
        MemorySegment.copy(frames, ValueLayout.JAVA_BYTE, PAGE, page, 0, PAGE);
        return page;
    }

    @Benchmark
    public byte[] accessReadPage() {
        access.read(0, page, 0, PAGE);
        return page;
    }

    @Benchmark
    public byte[] guestReadPage() {
        guest.read(0, page, 0, PAGE);
        return page;
    }

    @Benchmark
    public void plainWritePage() {
        MemorySegment.copy(page, 0, plain, ValueLayout.JAVA_BYTE, 0, PAGE);
    }

    @Benchmark
    public void frameWritePage() {
        MemorySegment.copy(page, 0, frames, ValueLayout.JAVA_BYTE, PAGE, PAGE);
    }

    @Benchmark
    public void accessWritePage() {
        access.write(0, page, 0, PAGE);
    }

    @Benchmark
    public void guestWritePage() {
        guest.write(0, page, 0, PAGE);
    }
}
