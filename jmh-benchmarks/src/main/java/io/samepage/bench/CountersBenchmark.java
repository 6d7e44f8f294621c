package io.samepage.bench;

import io.samepage.core.DedupEngine;
import io.samepage.core.EngineContext;
import io.samepage.core.EngineCounters;
import io.samepage.core.Guest;
import io.samepage.hashing.Pages;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
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
 * {@code DedupEngine.counters()} on 1,000 and on 1,000,000 guest pages (4 guests, every page written and
 * scanned twice, the even pages alike in every guest and merged): the counters are kept as pages change, so the cost should
 * not depend on the page count (the daemon reads them every 250 ms). Run:
 * {@code $JAVA -jar jmh-benchmarks/target/benchmarks.jar CountersBenchmark}.
 */
@State(Scope.Benchmark)
@Fork(value = 1, jvmArgsAppend = "--enable-native-access=ALL-UNNAMED")
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
public class CountersBenchmark {

    @Param({"1000", "1000000"})
    int pages;

    private DedupEngine engine;

    @Setup
    public void setUp() {
        engine = DedupEngine.create(new EngineContext().poolBytes((long) (pages + 64) * Pages.PAGE_SIZE * 2).conclude());
        var domain = engine.createDomain("d");
        byte[] page = new byte[Pages.PAGE_SIZE];
        int perGuest = pages / 4;
        for (int g = 0; g < 4; g++) {
            Guest guest = engine.createGuest(domain, "g" + g, (long) perGuest * Pages.PAGE_SIZE);
            for (int p = 0; p < perGuest; p++) {
                page[0] = (byte) p;
                page[1] = (byte) (p >>> 8);
                page[2] = (byte) (p >>> 16);
                page[3] = (byte) (p % 2 == 0 ? 1 : g + 2);     // even pages are alike in every guest: merged
                guest.write((long) p * Pages.PAGE_SIZE, page, 0, page.length);
            }
        }
        engine.scanner().scanFullPass();
        engine.scanner().scanFullPass();
    }

    @TearDown
    public void tearDown() {
        engine.close();
    }

    @Benchmark
    public EngineCounters counters() {
        return engine.counters();
    }
}
