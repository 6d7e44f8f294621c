package io.samepage.bench;

import io.samepage.core.DedupEngine;
import io.samepage.core.EngineCounters;
import io.samepage.core.Guest;
import io.samepage.core.Scanner;
import io.samepage.hashing.Pages;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.concurrent.TimeUnit;
import java.util.function.IntToLongFunction;
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
 * Write-fault latency: one small write ({@code Guest.write}) to a guest page, sampled per write
 * ({@link Mode#SampleTime}, so the report gives p50 and p99), for pages in four conditions. Every
 * measured write goes to the next page of a supply, in order, at byte {@value #OFFSET} of the page; a
 * supply holds more memory than the caches, so each write finds its frame cold, as a guest's
 * scattered writes would.
 *
 * <ul>
 *   <li>{@code privateWrite*} (the reference): the page has a private frame: lock, check, store.</li>
 *   <li>{@code cowBreak*}: the page maps a shared frame that other pages keep mapping: copy-on-write
 *       takes a fresh frame, copies 4 KiB into it, drops one reference, then stores. Supply: a 2 GiB
 *       guest whose {@value #COW_PAGES} pages hold {@value #COW_CONTENTS} contents, four pages each,
 *       merged onto 128 Ki frames (512 MiB, more than this machine's 300 MiB L3, so a copy's source is
 *       rarely cached); pages are written in order, so the first three quarters of a supply break
 *       frames of 4, 3 and 2 mappers. Then the supply is refilled.</li>
 *   <li>{@code cowBreakWarm1Byte}: the same breaks, but the scanner's duty cycle refills the pool's
 *       warm list between every 1024 writes (see {@link WarmSharedSupply}), so a break takes a frame
 *       already faulted in: the steady state of a guest that breaks slower than the scanner refills.</li>
 *   <li>{@code cowBreakLastMapper}: the page is the last mapper of a shared frame (its twin broke away
 *       earlier): the break also takes the frame out of the stable index and frees it, which gives the
 *       memory back to the operating system ({@code madvise(MADV_DONTNEED)}) inside the write.</li>
 *   <li>{@code firstWrite}: the page was never written (it maps the zero frame): a fresh frame and no
 *       copy. With {@code privateWrite} it splits a break into its parts: frame allocation with the
 *       kernel's first-touch fault (freed frames were given back to the OS), and the 4 KiB copy.</li>
 * </ul>
 *
 * <p>Keeping every write a real break: the written bytes are the ones already there (bytes
 * {@value #OFFSET} to {@value #OFFSET}+7 are zero in every page), so a broken page keeps its content and
 * hash and one full scan merges it again. The engine does not look at the value: a write to a merged
 * page breaks it whatever it stores. Each supply is checked with the engine's counters after setup,
 * after every iteration and before and after every refill: the number of merged pages must have fallen
 * by exactly the number of measured writes, or the benchmark fails. Refills (scans) run in the
 * untimed invocation setup, when a supply runs out.
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.SampleTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 6, time = 1)
@Fork(value = 1, jvmArgsAppend = "--enable-native-access=ALL-UNNAMED")
public class CowBenchmark {

    /** Where in its page each measured write lands; these 8 bytes are zero in every page. */
    static final int OFFSET = 1024;
    static final int COW_PAGES = 512 << 10;
    static final int COW_CONTENTS = 128 << 10;
    static final int LAST_MAPPER_PAIRS = 256 << 10;
    static final int FRESH_PAGES = 512 << 10;
    static final int PRIVATE_PAGES = 256 << 10;
    /** Measured writes per scanner batch in {@link WarmSharedSupply}: what one batch refills. */
    static final int WRITES_PER_SCANNER_BATCH = 1024;

    private final MemorySegment oneByte = MemorySegment.ofArray(new byte[1]);
    private final MemorySegment eightBytes = MemorySegment.ofArray(new byte[8]);

    /** A guest whose pages the measured writes use up in order; refilled when used up. */
    @State(Scope.Thread)
    public abstract static class Supply {
        DedupEngine engine;
        Scanner scanner;
        Guest guest;
        long address;
        private int used;

        @Setup(Level.Trial)
        public void create() {
            engine = EngineWorkload.engine(guestBytes(), false);
            scanner = engine.scanner();
            guest = engine.createGuest(engine.createDomain("cow"), "vm", guestBytes());
            build();
            check(0, "after setup");
        }

        /** Picks the page of the next write (untimed); refills the supply first if it is used up. */
        @Setup(Level.Invocation)
        public void next() {
            if (used == writesPerFill()) {
                check(used, "before a refill");
                refill();
                used = 0;
                check(0, "after a refill");
            }
            betweenWrites(used);
            address = pageAddress(used++) + OFFSET;
        }

        /** Untimed work before measured write number {@code write} of a fill; none by default. */
        void betweenWrites(int write) {
        }

        @TearDown(Level.Iteration)
        public void verify() {
            check(used, "after an iteration");
        }

        @TearDown(Level.Trial)
        public void close() {
            engine.close();
        }

        abstract long guestBytes();

        abstract void build();

        abstract int writesPerFill();

        abstract long pageAddress(int write);

        abstract void refill();

        /** Throws unless the counters show that each of {@code writes} measured writes did what it should. */
        abstract void check(int writes, String when);

        /** Writes page {@code p} with content {@code keyOfPage(p)}, zeroing the bytes the measured writes store. */
        void writeContent(int pages, IntToLongFunction keyOfPage) {
            try (Arena arena = Arena.ofConfined()) {
                MemorySegment page = arena.allocate(Pages.PAGE_SIZE, Pages.PAGE_SIZE);
                for (int p = 0; p < pages; p++) {
                    EngineWorkload.fillPage(page, keyOfPage.applyAsLong(p));
                    page.asSlice(OFFSET, Long.BYTES).fill((byte) 0);
                    guest.write((long) p << Pages.PAGE_SHIFT, page);
                }
            }
        }

        static IllegalStateException broken(String when, String expected, Object got) {
            return new IllegalStateException("copy-on-write supply " + when + ": expected " + expected + ", got " + got);
        }
    }

    /** Pages that map a frame shared by up to 4 pages; three quarters of them per fill, so others keep mapping it. */
    @State(Scope.Thread)
    public static class SharedSupply extends Supply {

        @Override
        long guestBytes() {
            return (long) COW_PAGES << Pages.PAGE_SHIFT;
        }

        @Override
        void build() {
            writeContent(COW_PAGES, p -> p % COW_CONTENTS);
            scanner.scanFullPass();
            scanner.scanFullPass();
        }

        @Override
        int writesPerFill() {
            return COW_PAGES - COW_CONTENTS;
        }

        @Override
        long pageAddress(int write) {
            return (long) write << Pages.PAGE_SHIFT;
        }

        @Override
        void refill() {
            scanner.scanFullPass();
        }

        @Override
        void check(int writes, String when) {
            EngineCounters c = engine.counters();
            if (guest.counters().mergingPages() != COW_PAGES - writes || c.pagesShared() != COW_CONTENTS
                    || c.pagesSharing() != COW_PAGES - COW_CONTENTS - writes) {
                throw broken(when, (COW_PAGES - writes) + " merged pages on " + COW_CONTENTS + " shared frames after "
                        + writes + " writes", c);
            }
        }
    }

    /**
     * {@link SharedSupply} with the scanner's duty cycle in between: before every {@value
     * #WRITES_PER_SCANNER_BATCH}th write the scanner ends a batch of 0 pages (untimed), which refills the
     * pool's warm list ({@code FramePool.replenishWarm}). This is a guest that breaks at most that many
     * pages per duty cycle (20 ms by default: 51,200 breaks a second); {@code SharedSupply} is one that
     * breaks faster than the scanner refills, so every break faults a frame in.
     */
    @State(Scope.Thread)
    public static class WarmSharedSupply extends SharedSupply {

        @Override
        void betweenWrites(int write) {
            if (write % WRITES_PER_SCANNER_BATCH == 0) {
                scanner.scanBatch(0);
            }
        }
    }

    /**
     * Twin pairs (page {@code i} and page {@code N+i}) merged, then the second twin of each broken away
     * in setup, so each first twin is the last mapper of its frame.
     */
    @State(Scope.Thread)
    public static class LastMapperSupply extends Supply {

        @Override
        long guestBytes() {
            return 2L * LAST_MAPPER_PAIRS << Pages.PAGE_SHIFT;
        }

        @Override
        void build() {
            writeContent(2 * LAST_MAPPER_PAIRS, p -> p % LAST_MAPPER_PAIRS);
            scanner.scanFullPass();
            mergeThenBreakSecondTwins();
        }

        /** One full scan merges every pair whose hash held; then every second twin is broken away. */
        private void mergeThenBreakSecondTwins() {
            scanner.scanFullPass();
            MemorySegment zero = MemorySegment.ofArray(new byte[1]);
            for (int p = LAST_MAPPER_PAIRS; p < 2 * LAST_MAPPER_PAIRS; p++) {
                guest.write(((long) p << Pages.PAGE_SHIFT) + OFFSET, zero);
            }
        }

        @Override
        int writesPerFill() {
            return LAST_MAPPER_PAIRS;
        }

        @Override
        long pageAddress(int write) {
            return (long) write << Pages.PAGE_SHIFT;
        }

        @Override
        void refill() {
            mergeThenBreakSecondTwins();
        }

        @Override
        void check(int writes, String when) {
            EngineCounters c = engine.counters();
            if (guest.counters().mergingPages() != LAST_MAPPER_PAIRS - writes
                    || c.pagesShared() != LAST_MAPPER_PAIRS - writes || c.pagesSharing() != 0) {
                throw broken(when, (LAST_MAPPER_PAIRS - writes) + " frames each mapped by one page after " + writes
                        + " writes", c);
            }
        }
    }

    /** Never-written pages; a refill gives every frame back ({@code fill} with zeros unmaps whole pages). */
    @State(Scope.Thread)
    public static class FreshSupply extends Supply {

        @Override
        long guestBytes() {
            return (long) FRESH_PAGES << Pages.PAGE_SHIFT;
        }

        @Override
        void build() {
        }

        @Override
        int writesPerFill() {
            return FRESH_PAGES;
        }

        @Override
        long pageAddress(int write) {
            return (long) write << Pages.PAGE_SHIFT;
        }

        @Override
        void refill() {
            guest.fill(0, guest.sizeBytes(), (byte) 0);
        }

        @Override
        void check(int writes, String when) {
            if (engine.framesInUse() != 1 + writes) {
                throw broken(when, (1 + writes) + " frames in use (the zero frame and one per write)",
                        engine.framesInUse());
            }
        }
    }

    /** Written pages with private frames; the writes cycle through them and they stay private. */
    @State(Scope.Thread)
    public static class PrivateSupply extends Supply {

        @Override
        long guestBytes() {
            return (long) PRIVATE_PAGES << Pages.PAGE_SHIFT;
        }

        @Override
        void build() {
            writeContent(PRIVATE_PAGES, p -> p);
        }

        @Override
        int writesPerFill() {
            return PRIVATE_PAGES;
        }

        @Override
        long pageAddress(int write) {
            return (long) write << Pages.PAGE_SHIFT;
        }

        @Override
        void refill() {
        }

        @Override
        void check(int writes, String when) {
            EngineCounters c = engine.counters();
            if (engine.framesInUse() != 1 + PRIVATE_PAGES || c.pagesShared() != 0) {
                throw broken(when, (1 + PRIVATE_PAGES) + " frames in use, none shared", c);
            }
        }
    }

    @Benchmark
    public void privateWrite1Byte(PrivateSupply supply) {
        supply.guest.write(supply.address, oneByte);
    }

    @Benchmark
    public void privateWrite8Bytes(PrivateSupply supply) {
        supply.guest.write(supply.address, eightBytes);
    }

    @Benchmark
    public void cowBreak1Byte(SharedSupply supply) {
        supply.guest.write(supply.address, oneByte);
    }

    @Benchmark
    public void cowBreak8Bytes(SharedSupply supply) {
        supply.guest.write(supply.address, eightBytes);
    }

    @Benchmark
    public void cowBreakWarm1Byte(WarmSharedSupply supply) {
        supply.guest.write(supply.address, oneByte);
    }

    @Benchmark
    public void cowBreakLastMapper(LastMapperSupply supply) {
        supply.guest.write(supply.address, oneByte);
    }

    @Benchmark
    public void firstWrite(FreshSupply supply) {
        supply.guest.write(supply.address, oneByte);
    }
}
