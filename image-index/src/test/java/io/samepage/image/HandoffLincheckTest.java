package io.samepage.image;

import java.util.List;
import java.util.concurrent.atomic.AtomicIntegerArray;
import kotlin.Unit;
import kotlin.reflect.KFunction;
import kotlin.reflect.jvm.ReflectJvmMapping;
import org.jetbrains.kotlinx.lincheck.execution.ExecutionScenario;
import org.jetbrains.lincheck.datastructures.CustomScenarioDSLKt;
import org.jetbrains.lincheck.datastructures.DSLThreadScenario;
import org.jetbrains.lincheck.datastructures.ModelCheckingOptions;
import org.jetbrains.lincheck.datastructures.Operation;
import org.jetbrains.lincheck.datastructures.StressOptions;
import org.junit.jupiter.api.Test;

/**
 * The loader's hand-off ({@link Handoff}, {@link LoadBatch}'s claim word, {@link LoadWorker}) checked for
 * linearizability by Lincheck against a queue of tickets: every batch given is claimed by exactly one
 * worker, in the order given, and finished once; none is lost; the loading thread's await returns only
 * once its batch is finished, and then sees what the worker wrote before finishing it.
 *
 * <p>The hand-off is driven directly, without {@link LoadWorkers}' threads (which Lincheck does not
 * control) or a resolver: two workers and a {@link BatchRing} of {@value Handoff#PER_WORKER} batches per
 * worker, as the loader makes them. The loading thread gives the next batch if the ring has room and awaits
 * the oldest one; a worker claims a batch, stamps it and finishes it, as {@code LoadWorkers.serve} does, or,
 * as when a throwable surfaces right after the claim, has {@link Handoff#failHeld} find it in the ring by
 * its claim word and fail it. A worker finishes what it claims within the same operation, so the loading
 * thread awaits only a batch a worker has claimed (an open one it reports as open): a batch nobody would
 * ever claim would hang the scenario, not fail it. The loading thread gives only in the parallel part, as
 * the thread that gave the last batch is the one a worker wakes. Lincheck's model checker explores thread
 * switches first in hand-written scenarios of the hazardous shapes, then in random ones; a short stress run
 * follows on real threads. Not covered: cancelling (a flag a worker reads at its next block, best effort
 * by design, so not linearizable against a claim) and a worker's wait for a batch ({@link LoadWorker#awaitBatch},
 * which blocks until a give that a random scenario may never make).
 *
 * <p>Public because Lincheck instantiates it and calls its operations reflectively.
 */
public class HandoffLincheckTest {

    private static final int WORKERS = 2;
    private static final int CAPACITY = Handoff.PER_WORKER * WORKERS;
    /** More tickets than any scenario here gives: at most one per operation. */
    private static final int TICKETS = 64;
    /** What {@link #give} returns when the ring has no room; what a worker returns when it claims nothing. */
    private static final long NONE = -1;
    /** What a worker that failed its batch returns when {@link Handoff#failHeld} did not find it. */
    private static final long LOST = -2;

    private final LoadWorker[] workers = new LoadWorker[WORKERS];
    private final Handoff handoff;
    private final BatchRing ring = new BatchRing(CAPACITY);
    /** How many times a worker finished each ticket: once each, if the hand-off is right. */
    private final AtomicIntegerArray finishes = new AtomicIntegerArray(TICKETS);
    /** The loading thread's: tickets given, and tickets awaited. */
    private long given;
    private long awaited;

    public HandoffLincheckTest() {
        for (int w = 0; w < WORKERS; w++) {
            workers[w] = new LoadWorker(w);
        }
        handoff = new Handoff(workers, LoadWorkers.Seams.NONE);
    }

    /** On the loading thread: gives the next batch, its ticket as its first block; {@link #NONE} if the ring is full. */
    @Operation(nonParallelGroup = "loader")
    public long give() {
        if (ring.isFull()) {
            return NONE;
        }
        LoadBatch batch = ring.at(ring.nextSlot());
        batch.reset(given, 1, null, 0, false, 0, null);
        batch.outcome[0] = LoadBatch.SKIPPED;
        batch.outcome[1] = -1;
        ring.add();
        handoff.give(batch, null);
        return given++;
    }

    /**
     * On the loading thread: awaits the oldest batch in flight and says what became of it: its ticket, who
     * finished it, how, and how many times. "none" if no batch is in flight; "open" if the oldest is given
     * and claimed by no worker yet, which it does not wait for.
     */
    @Operation(nonParallelGroup = "loader")
    public String await() {
        if (ring.isEmpty()) {
            return "none";
        }
        LoadBatch oldest = ring.at((int) (awaited % CAPACITY));
        // The claim word only goes open -> held by w -> finished (only this thread opens it again), so if all
        // three reads say no, it was open at the first.
        if (!oldest.heldBy(0) && !oldest.heldBy(1) && !oldest.finished()) {
            return "open";
        }
        LoadBatch batch = ring.takeOldest();
        long ticket = awaited++;
        if (batch != oldest || batch.firstBlock() != ticket) {
            return "ring out of order: ticket " + ticket + " came back as " + batch.firstBlock();
        }
        return report(ticket, batch.outcome[1], batch.outcome[0] == LoadBatch.FAILED && batch.failure() != null,
                finishes.get((int) ticket), batch.finished());
    }

    @Operation(nonParallelGroup = "worker0")
    public long work0() {
        return work(0);
    }

    @Operation(nonParallelGroup = "worker1")
    public long work1() {
        return work(1);
    }

    @Operation(nonParallelGroup = "worker0")
    public long fail0() {
        return fail(0);
    }

    @Operation(nonParallelGroup = "worker1")
    public long fail1() {
        return fail(1);
    }

    /** Claims the oldest open batch, stamps it as resolved by worker {@code w} and finishes it; its ticket. */
    private long work(int w) {
        LoadWorker worker = workers[w];
        LoadBatch batch = handoff.claim(worker);
        if (batch == null) {
            return NONE;
        }
        long ticket = batch.firstBlock();
        batch.outcome[0] = LoadBatch.READ;
        batch.outcome[1] = (byte) w;
        finishes.incrementAndGet((int) ticket);
        batch.finish();
        handoff.wakeLoader();
        return ticket;
    }

    /**
     * Claims the oldest open batch, stamps it, and then, as a worker that a throwable met right after its
     * claim and that lost the batch with its stack, has the hand-off find and fail the batch it holds.
     */
    private long fail(int w) {
        LoadWorker worker = workers[w];
        LoadBatch batch = handoff.claim(worker);
        if (batch == null) {
            return NONE;
        }
        long ticket = batch.firstBlock();
        batch.outcome[1] = (byte) w;
        finishes.incrementAndGet((int) ticket);
        // As LoadWorkers.settle: the batch is found by its claim word alone, not through the reference.
        if (!handoff.failHeld(worker, new InternalError("a fault in a mapped read, raised late"))) {
            return LOST;
        }
        handoff.wakeLoader();
        return ticket;
    }

    private static String report(long ticket, int worker, boolean failed, int finishes, boolean finished) {
        return "ticket " + ticket + (failed ? " failed" : " resolved") + " by worker " + worker + ", finished "
                + finishes + " time(s)" + (finished ? "" : ", still in flight");
    }

    @Test
    void theHandoffIsLinearizableUnderModelChecking() {
        ModelCheckingOptions options = new ModelCheckingOptions().iterations(6).invocationsPerIteration(250)
                .threads(3).actorsPerThread(3).actorsBefore(0).actorsAfter(3)
                .sequentialSpecification(Model.class);
        for (ExecutionScenario scenario : hazardousScenarios()) {
            options.addCustomScenario(scenario);
        }
        options.check(HandoffLincheckTest.class);
    }

    @Test
    void theHandoffIsLinearizableUnderStress() {
        new StressOptions().iterations(6).invocationsPerIteration(250).threads(3).actorsPerThread(3)
                .actorsBefore(0).actorsAfter(3).sequentialSpecification(Model.class).check(HandoffLincheckTest.class);
    }

    /** The shapes where a give, a claim, a finish and an await meet, each explored over many interleavings. */
    private static List<ExecutionScenario> hazardousScenarios() {
        KFunction<?> give = operation("give");
        KFunction<?> await = operation("await");
        KFunction<?> work0 = operation("work0");
        KFunction<?> work1 = operation("work1");
        KFunction<?> fail0 = operation("fail0");
        KFunction<?> fail1 = operation("fail1");
        return List.of(
                // both workers race for the batches as they are given; the loading thread awaits each
                scenario(List.of(List.of(give, give, await, await), List.of(work0, work0), List.of(work1, work1)),
                        List.of(await, await)),
                // a worker fails the batch it holds through the ring while the other claims the next one
                scenario(List.of(List.of(give, give, await, await), List.of(fail0, work0), List.of(work1, fail1)),
                        List.of(await, await)),
                // the ring fills, and the loading thread gives again into the places of batches it awaited,
                // while late workers still look at those places under the old tickets
                scenario(List.of(List.of(give, give, give, give, await, await, give, give),
                        List.of(work0, work0, fail0), List.of(work1, work1, work1)),
                        List.of(await, await, await, await, work0, work0, await, await)));
    }

    private static KFunction<?> operation(String name) {
        try {
            return ReflectJvmMapping.getKotlinFunction(HandoffLincheckTest.class.getMethod(name));
        } catch (NoSuchMethodException e) {
            throw new AssertionError(e);
        }
    }

    private static ExecutionScenario scenario(List<List<KFunction<?>>> threads, List<KFunction<?>> post) {
        return CustomScenarioDSLKt.scenario(builder -> {
            builder.parallel(parallel -> {
                for (List<KFunction<?>> thread : threads) {
                    parallel.thread(actors(thread));
                }
                return Unit.INSTANCE;
            });
            builder.post(actors(post));
            return Unit.INSTANCE;
        });
    }

    private static kotlin.jvm.functions.Function1<DSLThreadScenario, Unit> actors(List<KFunction<?>> calls) {
        return thread -> {
            for (KFunction<?> call : calls) {
                thread.actor(call);
            }
            return Unit.INSTANCE;
        };
    }

    /**
     * The sequential specification: tickets given in order into a ring of {@link #CAPACITY}; a worker claims
     * the oldest ticket nobody claimed and finishes it at once; the loading thread takes tickets back
     * oldest first, each finished once by the worker that claimed it.
     */
    public static class Model {
        private final int[] claimedBy = new int[TICKETS];
        private final boolean[] failed = new boolean[TICKETS];
        private long given;
        private long claimed;
        private long awaited;

        public long give() {
            if (given - awaited == CAPACITY) {
                return NONE;
            }
            return given++;
        }

        public String await() {
            if (awaited == given) {
                return "none";
            }
            if (awaited == claimed) {
                return "open";
            }
            long ticket = awaited++;
            return report(ticket, claimedBy[(int) ticket], failed[(int) ticket], 1, true);
        }

        public long work0() {
            return claim(0, false);
        }

        public long work1() {
            return claim(1, false);
        }

        public long fail0() {
            return claim(0, true);
        }

        public long fail1() {
            return claim(1, true);
        }

        private long claim(int worker, boolean fails) {
            if (claimed == given) {
                return NONE;
            }
            claimedBy[(int) claimed] = worker;
            failed[(int) claimed] = fails;
            return claimed++;
        }
    }
}
