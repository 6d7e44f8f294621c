package io.samepage.bench;

import io.samepage.core.DedupEngine;
import io.samepage.core.EngineContext;
import io.samepage.core.FrameBacking;
import io.samepage.core.Guest;
import io.samepage.hashing.Pages;
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
 * One {@link Guest#write} of {@value #PAGES} pages (64 MiB) onto frames the kernel does not back (gone
 * back to the operating system, as after a guest's memory was freed, and no warm list), as a guest
 * loading an image writes them, scored in nanoseconds per page. {@code populate=true} is the engine as
 * built: the write takes its frames ahead from its reservation, populated for it
 * ({@code FramePool.allocateReservedForOverwrite}: {@code madvise(MADV_POPULATE_WRITE)} per run); {@code
 * populate=false}, the reference, is the same engine with a backing whose populate does nothing, so
 * each page's first write takes a page fault, as every write did before. Between shots the guest's
 * pages are filled with zeros, which gives their frames back to the operating system.
 */
@State(Scope.Thread)
@Fork(value = 1, jvmArgsAppend = "--enable-native-access=ALL-UNNAMED")
@BenchmarkMode(Mode.SingleShotTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Warmup(iterations = 3)
@Measurement(iterations = 10)
public class FreshWriteBenchmark {

    static final int PAGES = 16384;
    static final long BYTES = (long) PAGES * Pages.PAGE_SIZE;

    @Param({"true", "false"})
    public boolean populate;

    private DedupEngine engine;
    private Guest guest;
    private Arena arena;
    private MemorySegment content;

    @Setup(Level.Trial)
    public void create() {
        engine = DedupEngine.create(new EngineContext().poolBytes(2 * BYTES).warmFrames(0)
                .frameBacking(populate ? FrameBacking.anonymous() : WithoutPopulate.anonymous()).conclude());
        guest = engine.createGuest(engine.createDomain("bench"), "g", BYTES);
        arena = Arena.ofShared();
        content = arena.allocate(BYTES, Pages.PAGE_SIZE);
        for (long off = 0; off < BYTES; off += Long.BYTES) {
            content.set(ValueLayout.JAVA_LONG, off, off * 0x9E37_79B9_7F4A_7C15L + 1);
        }
        guest.write(0, content);                       // every frame used once, so later shots take freed ones
        guest.fill(0, BYTES, (byte) 0);
    }

    @Benchmark
    @OperationsPerInvocation(PAGES)
    public void write() {
        guest.write(0, content);
    }

    /** Every page back to zeros: its frame goes back to the operating system (no warm list). */
    @TearDown(Level.Invocation)
    public void free() {
        guest.fill(0, BYTES, (byte) 0);
        if (engine.framesInUse() != 1) {
            throw new IllegalStateException("the guest still holds " + (engine.framesInUse() - 1) + " frames");
        }
    }

    @TearDown(Level.Trial)
    public void close() {
        engine.close();
        arena.close();
    }
}
