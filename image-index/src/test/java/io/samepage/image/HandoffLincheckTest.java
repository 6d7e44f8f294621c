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
 * ever claim would hang the scenario, not fail it. The loading thread gives in the parallel part, as the
 * thread that gave the last batch is the one a worker wakes, or in the post part, once nothing can wait for
 * it. Lincheck's model checker explores thread switches first in hand-written scenarios of the hazardous
 * shapes, then in random ones; a short stress run follows on real threads.
 *
 * <p>The loading thread also cancels every batch in flight ({@link BatchRing#cancelInFlight}, as
 * {@link BatchRing#drain} does), and a worker skips a batch it finds cancelled. Cancelling is a flag the
 * worker reads after its claim, best effort by design, so whether a cancelled batch was skipped or resolved
 * is not linearizable against the claim: the loading thread reports a batch it cancelled as "cancelled",
 * either way. What is checked is that a cancel changes nothing else, and that a batch it did not cancel
 * (one given after, in a batch reused from the ring) is never skipped.
 *
 * <p>A worker's wait for a batch ({@link LoadWorker#awaitBatch}, woken by {@link Handoff#give}) and the
 * loading thread's drain ({@link BatchRing#drain}, which waits for batches still open) block until another
 * thread acts, which a random scenario may never make it do: they are checked in {@link Waiting}, on
 * hand-written scenarios only, in which every wait has a give or a claim to end it. A worker that waits and
 * can never claim the batch given for it, or a drain that returns before its batches are finished, shows
 * as a hang or a wrong report. A lost wake-up does not: Lincheck's model checker lets
 * {@code LockSupport.park} return spuriously at any point, as the JDK may, and a worker that wakes so finds
 * the batch itself. That a give wakes a waiting worker rests on the argument in {@link LoadWorker#awaitBatch}.
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
    /** The loading thread's: the tickets it cancelled while they were in flight. */
    private final boolean[] cancelled = new boolean[TICKETS];
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
        return reportOf(batch, ticket);
    }

    /**
     * On the loading thread: cancels every batch in flight, as a drain does before it waits; how many it
     * cancelled. Waits for none.
     */
    @Operation(nonParallelGroup = "loader")
    public long cancel() {
        for (long t = awaited; t < given; t++) {
            cancelled[(int) t] = true;
        }
        ring.cancelInFlight();
        return given - awaited;
    }

    /** What became of {@code batch}, ticket {@code ticket}, which the loading thread has taken back. */
    private String reportOf(LoadBatch batch, long ticket) {
        String how;
        if (batch.outcome[0] == LoadBatch.FAILED && batch.failure() != null) {
            how = "failed";
        } else if (cancelled[(int) ticket]) {
            how = "cancelled";      // resolved or skipped, as the worker found the flag
        } else {
            how = batch.outcome[0] == LoadBatch.SKIPPED ? "skipped" : "resolved";
        }
        return report(ticket, how, batch.outcome[1], finishes.get((int) ticket), batch.finished());
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

    /**
     * Claims the oldest open batch, stamps it as resolved by worker {@code w} (skipped, if it finds it
     * cancelled, as a resolver does at its next block) and finishes it; its ticket.
     */
    private long work(int w) {
        LoadBatch batch = handoff.claim(workers[w]);
        return batch == null ? NONE : resolve(batch, w);
    }

    private long resolve(LoadBatch batch, int w) {
        long ticket = batch.firstBlock();
        batch.outcome[0] = batch.cancelled() ? LoadBatch.SKIPPED : LoadBatch.READ;
        batch.outcome[1] = (byte) w;
        finishes.incrementAndGet((int) ticket);
        batch.finish();
        handoff.wakeLoader();
        return ticket;
    }

    /**
     * As {@code LoadWorkers.serve}: claims the oldest open batch, waiting for one ({@link LoadWorker#awaitBatch})
     * while there is none, then resolves it as {@link #work} does; its ticket. Blocks until a batch is given.
     */
    private long take(int w) {
        LoadWorker worker = workers[w];
        worker.thread = Thread.currentThread();
        LoadBatch batch;
        while ((batch = handoff.claim(worker)) == null) {
            worker.awaitBatch(handoff, this);
        }
        return resolve(batch, w);
    }

    /**
     * On the loading thread: {@link BatchRing#drain}, which cancels every batch in flight and waits until
     * each is finished (waking a worker for one still open); then what became of them. Blocks until every
     * batch given is claimed and finished.
     */
    private String drain() {
        for (long t = awaited; t < given; t++) {
            cancelled[(int) t] = true;
        }
        Throwable thrown = ring.drain();
        StringBuilder reports = new StringBuilder("drained");
        for (; awaited < given; awaited++) {
            LoadBatch batch = ring.at((int) (awaited % CAPACITY));
            reports.append("; ").append(batch.firstBlock() == awaited ? reportOf(batch, awaited)
                    : "ring out of order: ticket " + awaited + " came back as " + batch.firstBlock());
        }
        return thrown == null && ring.isEmpty() ? reports.toString() : "drain left " + thrown + ", empty " + ring.isEmpty();
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

    private static String report(long ticket, String how, int worker, int finishes, boolean finished) {
        return "ticket " + ticket + " " + how + " by worker " + worker + ", finished " + finishes + " time(s)"
                + (finished ? "" : ", still in flight");
    }

    @Test
    void theHandoffIsLinearizableUnderModelChecking() {
        ModelCheckingOptions options = new ModelCheckingOptions().iterations(5).invocationsPerIteration(200)
                .threads(3).actorsPerThread(3).actorsBefore(0).actorsAfter(3)
                .sequentialSpecification(Model.class);
        for (ExecutionScenario scenario : hazardousScenarios()) {
            options.addCustomScenario(scenario);
        }
        options.check(HandoffLincheckTest.class);
    }

    /** Workers that wait for a batch, and a loading thread that drains: hand-written scenarios only. */
    @Test
    void theHandoffWithWaitsAndDrainsIsLinearizableUnderModelChecking() {
        ModelCheckingOptions options = new ModelCheckingOptions().iterations(0).invocationsPerIteration(200)
                .sequentialSpecification(WaitingModel.class);
        for (ExecutionScenario scenario : waitingScenarios()) {
            options.addCustomScenario(scenario);
        }
        options.check(Waiting.class);
    }

    @Test
    void theHandoffIsLinearizableUnderStress() {
        new StressOptions().iterations(6).invocationsPerIteration(250).threads(3).actorsPerThread(3)
                .actorsBefore(0).actorsAfter(3).sequentialSpecification(Model.class).check(HandoffLincheckTest.class);
    }

    /** The shapes where a give, a claim, a finish, a cancel and an await meet, each explored over many interleavings. */
    private static List<ExecutionScenario> hazardousScenarios() {
        KFunction<?> give = operation(HandoffLincheckTest.class, "give");
        KFunction<?> await = operation(HandoffLincheckTest.class, "await");
        KFunction<?> cancel = operation(HandoffLincheckTest.class, "cancel");
        KFunction<?> work0 = operation(HandoffLincheckTest.class, "work0");
        KFunction<?> work1 = operation(HandoffLincheckTest.class, "work1");
        KFunction<?> fail0 = operation(HandoffLincheckTest.class, "fail0");
        KFunction<?> fail1 = operation(HandoffLincheckTest.class, "fail1");
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
                        List.of(await, await, await, await, work0, work0, await, await)),
                // the loading thread cancels the batches in flight while workers claim them; then it gives
                // four more, two of them in the ring's batches it cancelled, which no worker may skip
                scenario(List.of(List.of(give, give, cancel, await, await), List.of(work0, fail0), List.of(work1)),
                        List.of(work0, work1, await, await, give, give, give, give, work0, work1, work0, work1,
                                await, await, await, await)));
    }

    /**
     * The shapes where a worker's wait for a batch meets the give that should end it, and a drain meets
     * workers that have not claimed its batches yet; in each, every wait has a give or a claim to end it.
     */
    private static List<ExecutionScenario> waitingScenarios() {
        KFunction<?> give = operation(Waiting.class, "give");
        KFunction<?> await = operation(Waiting.class, "await");
        KFunction<?> cancel = operation(Waiting.class, "cancel");
        KFunction<?> drain = operation(Waiting.class, "drain");
        KFunction<?> take0 = operation(Waiting.class, "take0");
        KFunction<?> take1 = operation(Waiting.class, "take1");
        return List.of(
                // both workers wait for a batch while the loading thread gives two
                scenario(List.of(List.of(give, give), List.of(take0), List.of(take1)), List.of(await, await)),
                // one worker takes three batches, waiting between them, while the other looks once
                scenario(List.of(List.of(give, give, give), List.of(take0, take0), List.of(take1)),
                        List.of(await, await, await)),
                // the loading thread cancels one batch, gives another and drains both while the workers wait
                // for them, claim them and finish them
                scenario(List.of(List.of(give, cancel, give, drain), List.of(take0), List.of(take1)), List.of()));
    }

    private static KFunction<?> operation(Class<?> type, String name) {
        try {
            return ReflectJvmMapping.getKotlinFunction(type.getMethod(name));
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
     * The hand-off with operations that block until another thread acts: a worker's {@link #take} and the
     * loading thread's {@link #drain}, beside its give, await and cancel. Checked on hand-written scenarios
     * only. Public because Lincheck instantiates it and calls its operations reflectively.
     */
    public static class Waiting {
        private final HandoffLincheckTest handoff = new HandoffLincheckTest();

        @Operation(nonParallelGroup = "loader")
        public long give() {
            return handoff.give();
        }

        @Operation(nonParallelGroup = "loader")
        public String await() {
            return handoff.await();
        }

        @Operation(nonParallelGroup = "loader")
        public long cancel() {
            return handoff.cancel();
        }

        @Operation(nonParallelGroup = "loader")
        public String drain() {
            return handoff.drain();
        }

        @Operation(nonParallelGroup = "worker0")
        public long take0() {
            return handoff.take(0);
        }

        @Operation(nonParallelGroup = "worker1")
        public long take1() {
            return handoff.take(1);
        }
    }

    /**
     * The sequential specification: tickets given in order into a ring of {@link #CAPACITY}; a worker claims
     * the oldest ticket nobody claimed and finishes it at once; the loading thread takes tickets back
     * oldest first, each finished once by the worker that claimed it; a cancel marks the tickets in flight.
     */
    public static class Model {
        private final int[] claimedBy = new int[TICKETS];
        private final boolean[] failed = new boolean[TICKETS];
        private final boolean[] cancelled = new boolean[TICKETS];
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
            return reportOf(awaited++);
        }

        public long cancel() {
            for (long t = awaited; t < given; t++) {
                cancelled[(int) t] = true;
            }
            return given - awaited;
        }

        private String reportOf(long ticket) {
            String how = failed[(int) ticket] ? "failed" : cancelled[(int) ticket] ? "cancelled" : "resolved";
            return report(ticket, how, claimedBy[(int) ticket], 1, true);
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

        /** The next ticket nobody claimed, claimed by {@code worker}; {@link #NONE} if there is none. */
        long claim(int worker, boolean fails) {
            if (claimed == given) {
                return NONE;
            }
            claimedBy[(int) claimed] = worker;
            failed[(int) claimed] = fails;
            return claimed++;
        }

        /**
         * Every ticket in flight cancelled and taken back, each with its report; only once each is claimed (a
         * drain waits for the others, which a sequential run cannot: it says so, which no real drain returns).
         */
        String drainAll() {
            if (claimed < given) {
                return "waits for a batch nobody claimed";
            }
            cancel();
            StringBuilder reports = new StringBuilder("drained");
            while (awaited < given) {
                reports.append("; ").append(reportOf(awaited++));
            }
            return reports.toString();
        }
    }

    /**
     * {@link Waiting}'s specification: a take claims as a work does, and a drain as {@link Model#drain}. A take
     * when nothing is left to claim returns {@link #NONE}, which a real take, which waits, never returns.
     */
    public static class WaitingModel extends Model {

        public long take0() {
            return claim(0, false);
        }

        public long take1() {
            return claim(1, false);
        }

        public String drain() {
            return drainAll();
        }
    }
}
