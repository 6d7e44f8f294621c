package io.samepage.core;

import io.samepage.hashing.Pages;
import java.lang.foreign.ValueLayout;
import java.util.Arrays;
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
import org.jetbrains.lincheck.datastructures.Validate;
import org.junit.jupiter.api.Test;

/**
 * A {@link FramePool}'s frames taken and freed from several threads, checked for linearizability by
 * Lincheck against a count of free frames: no frame is handed out while someone holds it, a freed frame
 * can be taken again, a frame taken to read as zeros does, and the pool's counts are those of the
 * specification after every operation.
 *
 * <p>The pool is tiny so that the model checker explores it: 4 frames, the zero frame and 3 to hand out,
 * and a warm limit of 1, so frees put frames on both the warm list and the cold list. Two holders,
 * {@code a} and {@code b}, each on a thread of its own, take frames as writers do ({@link
 * FramePool#tryAllocate}, {@link FramePool#tryReserve} then {@link FramePool#allocateReserved}, or two at
 * once with {@link FramePool#allocateForOverwrite}) and give them back as the scanner does ({@link
 * FramePool#freeAll}) or with {@link FramePool#free}, one frame a call; the scanner's warm list refill
 * ({@link FramePool#replenishWarm}) and the counts run on any thread. One frame a call, since a
 * {@code freeAll} of several is not one step, as its Javadoc says ("like free on each"): the frames that
 * go on the warm list are available before those that go back to the system, so another thread can
 * take some while the call runs, which a specification with the call as one operation refuses. Each holder writes the frames it
 * takes, so a frame that came back without being zeroed shows; who holds which frame is kept beside the
 * pool, so a frame handed out twice shows at once. After each part of a scenario every frame the pool
 * counts available is taken and given back, so a frame counted free that is on no list shows too.
 * Lincheck's model checker explores thread switches first in hand-written scenarios of the hazardous
 * shapes, then in random ones; a short stress run follows on real threads.
 *
 * <p>Public because Lincheck instantiates it and calls its operations reflectively.
 */
public class FramePoolLincheckTest {

    private static final int FRAMES = 3;
    private static final int LAST_BYTE = Pages.PAGE_SIZE - 1;

    /** The pool of the previous invocation: Lincheck makes one instance per invocation and never closes it. */
    private static FramePool previous;

    private final FramePool pool;
    /** Who holds each frame: 0 nobody, else the holder's number plus 1. */
    private final AtomicIntegerArray owner = new AtomicIntegerArray(FRAMES + 1);
    private final Holder a = new Holder(0);
    private final Holder b = new Holder(1);

    public FramePoolLincheckTest() {
        closePrevious();
        pool = new FramePool((FRAMES + 1L) * Pages.PAGE_SIZE, 1);
        previous = pool;
    }

    private static synchronized void closePrevious() {
        if (previous != null) {
            previous.close();
            previous = null;
        }
    }

    /** One holder's frames and reservation: touched only by the holder's operations, which run on one thread. */
    private final class Holder {
        final int number;
        final int[] frames = new int[FRAMES];
        int held;
        int reserved;

        Holder(int number) {
            this.number = number;
        }

        String take() {
            return took(pool.tryAllocate(true), true);
        }

        boolean reserve() {
            if (!pool.tryReserve(1)) {
                return false;
            }
            reserved++;
            return true;
        }

        String takeReserved() {
            if (reserved == 0) {
                return "no reservation";
            }
            int frame = pool.allocateReserved();
            reserved--;
            return took(frame, true);
        }

        String takeTwo() {
            int[] two = new int[2];
            if (!pool.allocateForOverwrite(two, 2)) {
                return "none";
            }
            String first = took(two[0], false);
            String second = took(two[1], false);
            return first.equals("taken") ? second : first;
        }

        /** Records {@code frame}, just taken (-1: none was), checks it and writes its first and last byte. */
        private String took(int frame, boolean zeroed) {
            if (frame < 0) {
                return "none";
            }
            if (frame == FramePool.ZERO_FRAME || frame > FRAMES) {
                return "frame " + frame + " is not one to hand out";
            }
            int holder = owner.get(frame);
            if (!owner.compareAndSet(frame, 0, number + 1)) {
                return "frame " + frame + " handed out while holder " + (holder - 1) + " holds it";
            }
            frames[held++] = frame;
            long at = FramePool.offsetOf(frame);
            if (zeroed && (pool.memory().get(ValueLayout.JAVA_BYTE, at) != 0
                    || pool.memory().get(ValueLayout.JAVA_BYTE, at + LAST_BYTE) != 0)) {
                return "frame " + frame + " taken to read as zeros holds old bytes";
            }
            if (pool.table().refCount(frame) != 1) {
                return "frame " + frame + " taken with refcount " + pool.table().refCount(frame);
            }
            pool.memory().set(ValueLayout.JAVA_BYTE, at, (byte) (number + 1));
            pool.memory().set(ValueLayout.JAVA_BYTE, at + LAST_BYTE, (byte) (number + 1));
            return "taken";
        }

        /** Gives back the frame taken last, with {@link FramePool#freeAll} if {@code batch}, else {@link FramePool#free}. */
        boolean free(boolean batch) {
            if (held == 0) {
                return false;
            }
            int frame = frames[--held];
            giveUp(frame);
            if (batch) {
                pool.freeAll(new int[] {frame}, 1);
            } else {
                pool.free(frame);
            }
            return true;
        }

        /** Before the pool has the frame back: from then on another holder may take it. */
        private void giveUp(int frame) {
            if (!owner.compareAndSet(frame, number + 1, 0)) {
                throw new AssertionError("holder " + number + " gives up frame " + frame + ", which holder "
                        + (owner.get(frame) - 1) + " holds");
            }
        }
    }

    @Operation(nonParallelGroup = "a")
    public String takeA() {
        return a.take();
    }

    @Operation(nonParallelGroup = "a")
    public boolean reserveA() {
        return a.reserve();
    }

    @Operation(nonParallelGroup = "a")
    public String takeReservedA() {
        return a.takeReserved();
    }

    @Operation(nonParallelGroup = "a")
    public String takeTwoA() {
        return a.takeTwo();
    }

    @Operation(nonParallelGroup = "a")
    public boolean freeA() {
        return a.free(false);
    }

    @Operation(nonParallelGroup = "a")
    public boolean freeInBatchA() {
        return a.free(true);
    }

    @Operation(nonParallelGroup = "b")
    public String takeB() {
        return b.take();
    }

    @Operation(nonParallelGroup = "b")
    public boolean reserveB() {
        return b.reserve();
    }

    @Operation(nonParallelGroup = "b")
    public String takeReservedB() {
        return b.takeReserved();
    }

    @Operation(nonParallelGroup = "b")
    public String takeTwoB() {
        return b.takeTwo();
    }

    @Operation(nonParallelGroup = "b")
    public boolean freeB() {
        return b.free(false);
    }

    @Operation(nonParallelGroup = "b")
    public boolean freeInBatchB() {
        return b.free(true);
    }

    /** The scanner's refill of the warm list: moves frames between lists, changes no count. */
    @Operation
    public void replenish() {
        pool.replenishWarm(2);
    }

    @Operation
    public int available() {
        return pool.framesAvailable();
    }

    @Operation
    public int inUse() {
        return pool.framesInUse();
    }

    /**
     * Every frame the pool counts available is on one of its lists: taking them all at once succeeds, and
     * hands out no frame a holder has; then they go back. Counts are unchanged.
     */
    @Validate
    public void everyAvailableFrameIsOnAList() {
        int available = pool.framesAvailable();
        int[] frames = new int[FRAMES];
        if (!pool.allocateForOverwrite(frames, available)) {
            throw new AssertionError("the pool counts " + available + " frames available and could not hand them out");
        }
        for (int i = 0; i < available; i++) {
            if (owner.get(frames[i]) != 0) {
                throw new AssertionError("frame " + frames[i] + " is available while holder "
                        + (owner.get(frames[i]) - 1) + " holds it");
            }
        }
        pool.freeAll(frames, available);
        if (pool.framesInUse() != a.held + b.held) {
            throw new AssertionError("the pool counts " + pool.framesInUse() + " frames in use; the holders hold "
                    + (a.held + b.held));
        }
    }

    @Test
    void takesAndFreesFromSeveralThreadsAreLinearizableUnderModelChecking() {
        try {
            ModelCheckingOptions options = new ModelCheckingOptions().iterations(5).invocationsPerIteration(150)
                    .threads(2).actorsPerThread(3).actorsBefore(2).actorsAfter(2)
                    .sequentialSpecification(Model.class);
            for (ExecutionScenario scenario : hazardousScenarios()) {
                options.addCustomScenario(scenario);
            }
            options.check(FramePoolLincheckTest.class);
        } finally {
            closePrevious();
        }
    }

    @Test
    void takesAndFreesFromSeveralThreadsAreLinearizableUnderStress() {
        try {
            new StressOptions().iterations(3).invocationsPerIteration(100).threads(2).actorsPerThread(3)
                    .sequentialSpecification(Model.class).check(FramePoolLincheckTest.class);
        } finally {
            closePrevious();
        }
    }

    /** The shapes where takes, frees and the warm list refill meet, each explored over many interleavings. */
    private static List<ExecutionScenario> hazardousScenarios() {
        KFunction<?> takeA = operation("takeA");
        KFunction<?> takeB = operation("takeB");
        KFunction<?> takeTwoA = operation("takeTwoA");
        KFunction<?> reserveB = operation("reserveB");
        KFunction<?> takeReservedB = operation("takeReservedB");
        KFunction<?> freeA = operation("freeA");
        KFunction<?> freeInBatchA = operation("freeInBatchA");
        KFunction<?> freeInBatchB = operation("freeInBatchB");
        KFunction<?> freeB = operation("freeB");
        KFunction<?> replenish = operation("replenish");
        KFunction<?> available = operation("available");
        KFunction<?> inUse = operation("inUse");
        return List.of(
                // a frees two frames, the first onto the warm list, the second past its limit onto the cold list,
                // while b takes the last free frame and then one of those
                scenario(List.of(takeA, takeA), List.of(freeInBatchA, freeA, takeA, available),
                        List.of(takeB, takeB, inUse), List.of(available, inUse)),
                // b's reservation is taken while a frees and the refill moves cold frames to the warm list
                scenario(List.of(takeA, takeA, reserveB), List.of(freeA, replenish, freeA),
                        List.of(takeReservedB, takeB, available), List.of(inUse, available)),
                // the pool runs out: a takes two at once while b frees all it has and takes again
                scenario(List.of(takeB, takeB), List.of(takeTwoA, freeInBatchA, takeTwoA),
                        List.of(freeInBatchB, freeB, replenish, takeB), List.of(available, inUse)));
    }

    private static KFunction<?> operation(String name) {
        try {
            return ReflectJvmMapping.getKotlinFunction(FramePoolLincheckTest.class.getMethod(name));
        } catch (NoSuchMethodException e) {
            throw new AssertionError(e);
        }
    }

    private static ExecutionScenario scenario(List<KFunction<?>> initial, List<KFunction<?>> thread1,
            List<KFunction<?>> thread2, List<KFunction<?>> post) {
        return CustomScenarioDSLKt.scenario(builder -> {
            builder.initial(actors(initial));
            builder.parallel(parallel -> {
                parallel.thread(actors(thread1));
                parallel.thread(actors(thread2));
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
     * The sequential specification: a count of free frames nobody reserved, and each holder's frames and
     * reservation; a take comes out of the free count, a free goes back into it.
     */
    public static class Model {
        private int free = FRAMES;
        private final int[] held = new int[2];
        private final int[] reserved = new int[2];

        private String take(int holder, int count) {
            if (free < count) {
                return "none";
            }
            free -= count;
            held[holder] += count;
            return "taken";
        }

        private boolean reserve(int holder) {
            if (free == 0) {
                return false;
            }
            free--;
            reserved[holder]++;
            return true;
        }

        private String takeReserved(int holder) {
            if (reserved[holder] == 0) {
                return "no reservation";
            }
            reserved[holder]--;
            held[holder]++;
            return "taken";
        }

        private boolean free(int holder) {
            if (held[holder] == 0) {
                return false;
            }
            held[holder]--;
            free++;
            return true;
        }

        public String takeA() {
            return take(0, 1);
        }

        public boolean reserveA() {
            return reserve(0);
        }

        public String takeReservedA() {
            return takeReserved(0);
        }

        public String takeTwoA() {
            return take(0, 2);
        }

        public boolean freeA() {
            return free(0);
        }

        public boolean freeInBatchA() {
            return free(0);
        }

        public String takeB() {
            return take(1, 1);
        }

        public boolean reserveB() {
            return reserve(1);
        }

        public String takeReservedB() {
            return takeReserved(1);
        }

        public String takeTwoB() {
            return take(1, 2);
        }

        public boolean freeB() {
            return free(1);
        }

        public boolean freeInBatchB() {
            return free(1);
        }

        public void replenish() {
        }

        public int available() {
            return free;
        }

        public int inUse() {
            return held[0] + held[1];
        }
    }
}
