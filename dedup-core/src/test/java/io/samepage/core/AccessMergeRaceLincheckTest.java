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
 * Reads and writes through {@link GuestAccess} racing the scanner's merges, checked for linearizability
 * by Lincheck against plain byte arrays: a merge must be invisible, so a scan is a no-op in the
 * sequential specification, and a read through a cached translation must never return a byte of a
 * frame that a merge freed and a break took back for other content.
 *
 * <p>The engine: one domain, guests {@code a} and {@code b} of one page each, both holding the same
 * bytes and hashed once, so the next scan merges them ({@code b} maps {@code a}'s frame and frees its
 * own); the pool is 8 frames with no warm list, so a freed frame is the next one a break takes. Each
 * thread reaches the guests through accesses of its own, so a translation it cached in one operation
 * is used by the next. Lincheck's model checker explores thread switches inside the engine and the
 * access path, first in hand-written scenarios of the hazardous shapes, then in random ones; a short
 * stress run follows on real threads.
 *
 * <p>Public because Lincheck instantiates it and calls its operations reflectively.
 */
@Param(name = "address", gen = IntGen.class, conf = "0:1")
@Param(name = "value", gen = ByteGen.class, conf = "7:8")
public class AccessMergeRaceLincheckTest {

    private static final int PAGE = Pages.PAGE_SIZE;
    private static final byte EQUAL = 7;
    private static final byte DIFFERENT = 8;

    /** The engine of the previous invocation: Lincheck makes one instance per invocation and never closes it. */
    private static DedupEngine previous;

    private final DedupEngine engine;
    private final Guest a;
    private final Guest b;
    /** Each thread's accesses: a translation cached by one operation of a thread serves its next one. */
    private final ThreadLocal<GuestAccess[]> accesses;

    public AccessMergeRaceLincheckTest() {
        closePrevious();
        // CRC32C: one intrinsic per page, where the keyed NH's loop looks like a livelock to the model
        // checker (see WriteMergeRaceLincheckTest). The race checked here is in the epochs and locks.
        engine = DedupEngine.create(new EngineContext().poolBytes(8L * PAGE).warmFrames(0).hashSeed(1)
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
        accesses = ThreadLocal.withInitial(() -> new GuestAccess[] {a.access(), b.access()});
    }

    private static synchronized void closePrevious() {
        if (previous != null) {
            previous.close();
            previous = null;
        }
    }

    @Operation
    public byte readA(@Param(name = "address") int address) {
        return accesses.get()[0].readByte(address);
    }

    @Operation
    public byte readB(@Param(name = "address") int address) {
        return accesses.get()[1].readByte(address);
    }

    @Operation
    public void writeA(@Param(name = "address") int address, @Param(name = "value") byte value) {
        accesses.get()[0].writeByte(address, value);
    }

    @Operation
    public void writeB(@Param(name = "address") int address, @Param(name = "value") byte value) {
        accesses.get()[1].writeByte(address, value);
    }

    @Operation(nonParallelGroup = "scanner")
    public void scan() {
        engine.scanner().scanFullPass();
    }

    @Test
    void accessesRacingMergesAreLinearizableUnderModelChecking() {
        try {
            ModelCheckingOptions options = new ModelCheckingOptions().iterations(6).invocationsPerIteration(250)
                    .threads(2).actorsPerThread(3).actorsBefore(1).actorsAfter(2)
                    .sequentialSpecification(WriteMergeRaceLincheckTest.Model.class);
            for (ExecutionScenario scenario : hazardousScenarios()) {
                options.addCustomScenario(scenario);
            }
            options.check(AccessMergeRaceLincheckTest.class);
        } finally {
            closePrevious();
        }
    }

    @Test
    void accessesRacingMergesAreLinearizableUnderStress() {
        try {
            new StressOptions().iterations(6).invocationsPerIteration(250).threads(2).actorsPerThread(3)
                    .sequentialSpecification(WriteMergeRaceLincheckTest.Model.class)
                    .check(AccessMergeRaceLincheckTest.class);
        } finally {
            closePrevious();
        }
    }

    /** The shapes where a cached translation and a merge meet, each explored over many interleavings. */
    private static List<ExecutionScenario> hazardousScenarios() {
        KFunction<?> scan = operation("scan");
        KFunction<?> writeA = operation("writeA", int.class, byte.class);
        KFunction<?> writeB = operation("writeB", int.class, byte.class);
        KFunction<?> readA = operation("readA", int.class);
        KFunction<?> readB = operation("readB", int.class);
        return List.of(
                // b's translation is cached; the scan merges b into a's frame and frees b's; a's break
                // takes b's old frame for a's new bytes: b must still read its own
                scenario(List.of(call(readB, 0), call(readB, 0), call(readB, 0)),
                        List.of(call(scan), call(writeA, 0, DIFFERENT)), List.of(call(readA, 0), call(readB, 0))),
                // a holds a writable translation while the scan makes a's frame the shared one
                scenario(List.of(call(writeA, 0, EQUAL), call(writeA, 1, DIFFERENT), call(writeA, 1, EQUAL)),
                        List.of(call(scan), call(readB, 1)), List.of(call(readA, 1), call(readB, 1))),
                // both write through cached translations while the scan merges and the other breaks
                scenario(List.of(call(readA, 0), call(writeB, 0, EQUAL), call(writeB, 0, DIFFERENT)),
                        List.of(call(scan), call(writeA, 1, DIFFERENT), call(readB, 0)),
                        List.of(call(readA, 0), call(readB, 0), call(readA, 1), call(readB, 1))));
    }

    private record Call(KFunction<?> operation, Object... arguments) {
    }

    private static Call call(KFunction<?> operation, Object... arguments) {
        return new Call(operation, arguments);
    }

    private static KFunction<?> operation(String name, Class<?>... parameters) {
        try {
            return ReflectJvmMapping.getKotlinFunction(AccessMergeRaceLincheckTest.class.getMethod(name, parameters));
        } catch (NoSuchMethodException e) {
            throw new AssertionError(e);
        }
    }

    private static ExecutionScenario scenario(List<Call> thread1, List<Call> thread2, List<Call> post) {
        return CustomScenarioDSLKt.scenario(builder -> {
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
}
