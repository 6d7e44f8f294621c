package io.samepage.bench;

import io.samepage.core.DedupEngine;
import io.samepage.core.EngineContext;
import io.samepage.core.Guest;
import io.samepage.core.MergeDomain;
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
 * One {@code DedupEngine.createGuest} of a small guest ({@value #GUEST_BYTES} bytes, a WebAssembly
 * instance's first memory chunk) and its {@code Guest.destroy}, with {@code liveGuests} other guests of
 * the same size held in the engine: what an embedder with tens of thousands of instances pays per
 * instance it starts and ends. The 1,000-guest case is the reference of the same run; a cost that does
 * not depend on the live guests has a ratio near 1 to it. No page is written and the scanner does not
 * run, so the destroyed guest's page ids leave quarantine at its destroy. Four warm-up iterations: with
 * two, on a loaded machine, some runs were still settling in their measured ones. Run:
 * {@code $JAVA --enable-native-access=ALL-UNNAMED -jar jmh-benchmarks/target/benchmarks.jar GuestLifecycleBenchmark}.
 */
@State(Scope.Benchmark)
@Fork(value = 1, jvmArgsAppend = "--enable-native-access=ALL-UNNAMED")
@Warmup(iterations = 4, time = 1)
@Measurement(iterations = 5, time = 1)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
public class GuestLifecycleBenchmark {

    static final long GUEST_BYTES = 64 * 1024;

    @Param({"1000", "10000", "40000"})
    int liveGuests;

    private DedupEngine engine;
    private MergeDomain domain;

    @Setup
    public void setUp() {
        engine = DedupEngine.create(new EngineContext().poolBytes(64L << 20).conclude());
        domain = engine.createDomain("wasm");
        for (int g = 0; g < liveGuests; g++) {
            engine.createGuest(domain, "instance-" + g, GUEST_BYTES);
        }
    }

    @TearDown
    public void tearDown() {
        engine.close();
    }

    @Benchmark
    public Guest createAndDestroy() {
        Guest guest = engine.createGuest(domain, "churn", GUEST_BYTES);
        guest.destroy();
        return guest;
    }
}
