package io.samepage.core;

import io.samepage.hashing.HashAlgorithm;
import io.samepage.hashing.Pages;
import java.util.Arrays;
import java.util.List;
import kotlin.Unit;
import kotlin.reflect.KFunction;
import kotlin.reflect.jvm.ReflectJvmMapping;
import org.jetbrains.kotlinx.lincheck.execution.ExecutionScenario;
import org.jetbrains.lincheck.datastructures.ByteGen;
import org.jetbrains.lincheck.datastructures.CustomScenarioDSLKt;
import org.jetbrains.lincheck.datastructures.DSLThreadScenario;
import org.jetbrains.lincheck.datastructures.IntGen;
import org.jetbrains.lincheck.datastructures.ModelCheckingOptions;
import org.jetbrains.lincheck.datastructures.Operation;
import org.jetbrains.lincheck.datastructures.Param;
import org.jetbrains.lincheck.datastructures.StressOptions;
import org.junit.jupiter.api.Test;

/**
 * The race between a guest write and a merge, checked for linearizability by Lincheck against plain
 * byte arrays: merging must be invisible, so a scan is a no-op in the sequential specification.
 *
 * <p>The engine: one domain, guests {@code a} and {@code b} of one page each, both holding the same
 * bytes and visited once, so the next scan merges them. Operations: write a byte of {@code a} or
 * {@code b} (7 keeps the pages equal, 8 makes them differ), read a byte, and scan (one full pass;
 * never two at once, since the scanner is single-threaded). Lincheck's model checker explores thread
 * switches inside the engine (its locks included), first in hand-written scenarios of the hazardous
 * shapes (a write landing between the scanner's visits of the two pages, a copy-on-write break racing a
 * scan, both guests breaking one shared frame at once, the last mapper of a shared frame writing it in
 * place while the scanner merges into it), then in random ones; a short stress run
 * follows on real threads.
 *
 * <p>Public because Lincheck instantiates it and calls its operations reflectively.
 */
@Param(name = "address", gen = IntGen.class, conf = "0:1")
@Param(name = "value", gen = ByteGen.class, conf = "7:8")
public class WriteMergeRaceLincheckTest {

    private static final int PAGE = Pages.PAGE_SIZE;
    private static final byte EQUAL = 7;
    private static final byte DIFFERENT = 8;

    /** The engine of the previous invocation: Lincheck makes one instance per invocation and never closes it. */
    private static DedupEngine previous;

    private final DedupEngine engine;
    private final Guest a;
    private final Guest b;

    public WriteMergeRaceLincheckTest() {
        closePrevious();
        // CRC32C, one intrinsic call per page: the model checker steps through every memory access, and
        // the default keyed NH's 512-word loop per page looked to it like a livelock ("non-terminating
        // loops"). The race checked here is in the locks, not in the hash.
        engine = DedupEngine.create(new EngineContext().poolBytes(8L * PAGE).hashSeed(1)
                .hashAlgorithm(HashAlgorithm.CRC32C).conclude());
        previous = engine;
        MergeDomain domain = engine.createDomain("tenant");
        a = engine.createGuest(domain, "a", PAGE);
        b = engine.createGuest(domain, "b", PAGE);
        byte[] content = new byte[PAGE];
        Arrays.fill(content, EQUAL);
        a.write(0, content, 0, PAGE);
        b.write(0, content, 0, PAGE);
        engine.scanner().scanFullPass();
    }

    private static synchronized void closePrevious() {
        if (previous != null) {
            previous.close();
            previous = null;
        }
    }

    @Operation
    public void writeA(@Param(name = "address") int address, @Param(name = "value") byte value) {
        a.write(address, new byte[] {value}, 0, 1);
    }

    @Operation
    public void writeB(@Param(name = "address") int address, @Param(name = "value") byte value) {
        b.write(address, new byte[] {value}, 0, 1);
    }

    @Operation
    public byte readA(@Param(name = "address") int address) {
        return a.readByte(address);
    }

    @Operation
    public byte readB(@Param(name = "address") int address) {
        return b.readByte(address);
    }

    @Operation(nonParallelGroup = "scanner")
    public void scan() {
        engine.scanner().scanFullPass();
    }

    @Test
    void writesRacingMergesAreLinearizableUnderModelChecking() {
        try {
            ModelCheckingOptions options = new ModelCheckingOptions().iterations(6).invocationsPerIteration(250)
                    .threads(2).actorsPerThread(2).actorsBefore(1).actorsAfter(2)
                    .sequentialSpecification(Model.class);
            for (ExecutionScenario scenario : hazardousScenarios()) {
                options.addCustomScenario(scenario);
            }
            options.check(WriteMergeRaceLincheckTest.class);
        } finally {
            closePrevious();
        }
    }

    @Test
    void writesRacingMergesAreLinearizableUnderStress() {
        try {
            new StressOptions().iterations(6).invocationsPerIteration(250).threads(2).actorsPerThread(3)
                    .sequentialSpecification(Model.class).check(WriteMergeRaceLincheckTest.class);
        } finally {
            closePrevious();
        }
    }

    /** The shapes where a write and a merge meet, each explored over many interleavings. */
    private static List<ExecutionScenario> hazardousScenarios() {
        KFunction<?> scan = operation("scan");
        KFunction<?> writeA = operation("writeA", int.class, byte.class);
        KFunction<?> writeB = operation("writeB", int.class, byte.class);
        KFunction<?> readA = operation("readA", int.class);
        KFunction<?> readB = operation("readB", int.class);
        return List.of(
                // a changes between the scanner's visit of a (a becomes b's merge candidate) and of b
                scenario(List.of(), List.of(call(scan)), List.of(call(writeA, 0, DIFFERENT)),
                        List.of(call(readB, 0), call(readA, 0))),
                // b changes while the scanner visits it and compares it with a
                scenario(List.of(), List.of(call(scan)), List.of(call(writeB, 1, DIFFERENT), call(readA, 1)),
                        List.of(call(readB, 1))),
                // a and b are merged: a's copy-on-write break races the next scan
                scenario(List.of(call(scan)), List.of(call(writeA, 0, DIFFERENT), call(readA, 0)),
                        List.of(call(scan), call(readB, 0)), List.of(call(readA, 0), call(readB, 0))),
                // a and b are merged: both break the shared frame at once (the last one may write in place)
                scenario(List.of(call(scan)), List.of(call(writeA, 0, DIFFERENT), call(readB, 0)),
                        List.of(call(writeB, 1, DIFFERENT), call(readA, 1)),
                        List.of(call(scan), call(readA, 0), call(readB, 0), call(readA, 1), call(readB, 1))),
                // a breaks sharing and becomes equal again while the scanner re-merges it
                scenario(List.of(call(scan)), List.of(call(writeA, 0, DIFFERENT), call(writeA, 0, EQUAL)),
                        List.of(call(scan), call(readB, 0)), List.of(call(scan), call(readA, 0), call(readB, 0))),
                // b is the last mapper of the shared frame and writes it in place while the scanner merges a,
                // equal again, into that very frame
                scenario(List.of(call(scan), call(writeA, 0, DIFFERENT), call(writeA, 0, EQUAL)), List.of(call(scan)),
                        List.of(call(writeB, 0, DIFFERENT)), List.of(call(readA, 0), call(readB, 0))));
    }

    private record Call(KFunction<?> operation, Object... arguments) {
    }

    private static Call call(KFunction<?> operation, Object... arguments) {
        return new Call(operation, arguments);
    }

    private static KFunction<?> operation(String name, Class<?>... parameters) {
        try {
            return ReflectJvmMapping.getKotlinFunction(WriteMergeRaceLincheckTest.class.getMethod(name, parameters));
        } catch (NoSuchMethodException e) {
            throw new AssertionError(e);
        }
    }

    private static ExecutionScenario scenario(List<Call> initial, List<Call> thread1, List<Call> thread2,
            List<Call> post) {
        return CustomScenarioDSLKt.scenario(builder -> {
            if (!initial.isEmpty()) {
                builder.initial(actors(initial));
            }
            builder.parallel(parallel -> {
                parallel.thread(actors(thread1));
                parallel.thread(actors(thread2));
                return Unit.INSTANCE;
            });
            builder.post(actors(post));
            return Unit.INSTANCE;
        });
    }

    private static kotlin.jvm.functions.Function1<DSLThreadScenario, Unit> actors(List<Call> calls) {
        return thread -> {
            for (Call call : calls) {
                thread.actor(call.operation(), call.arguments());
            }
            return Unit.INSTANCE;
        };
    }

    /** The sequential specification: two pages of plain bytes, on which a scan changes nothing. */
    public static class Model {
        private final byte[] a = new byte[PAGE];
        private final byte[] b = new byte[PAGE];

        public Model() {
            Arrays.fill(a, EQUAL);
            Arrays.fill(b, EQUAL);
        }

        public void writeA(int address, byte value) {
            a[address] = value;
        }

        public void writeB(int address, byte value) {
            b[address] = value;
        }

        public byte readA(int address) {
            return a[address];
        }

        public byte readB(int address) {
            return b[address];
        }

        public void scan() {
        }
    }
}
