package io.samepage.wasm;

import io.samepage.core.DedupEngine;
import io.samepage.testing.AllocationFaultLoader;
import io.samepage.testing.AllocationFaultRuns;
import io.samepage.testing.AllocationFaultRuns.Scenario;
import io.samepage.testing.AllocationFaultTestBase;
import io.samepage.testing.AllocationFaults;
import java.util.List;
import org.agrona.collections.Int2IntHashMap;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Whatever allocation of a WebAssembly memory on the engine fails, the call it fails in (a memory made
 * with its data-segment image, a load, a store, a bulk write, a {@code grow}, a flush, a close) leaves
 * the memory reading what it read before or what the call makes of it, its size old or new, no guest
 * behind that no memory holds, and the next grow and the next instance working. The classes of
 * {@code io.samepage.wasm} (and, for the tests "with the engine", the engine's and Agrona's collections under them)
 * are loaded child first by an {@link AllocationFaultLoader}, which rewrites them to ask
 * {@link AllocationFaults} before each allocation (and before each call of
 * {@code Throwable.addSuppressed}, which allocates); the engine's classes are loaded by it in every case,
 * so that the loader's and the engine's classes are one set. Chicory comes from the parent, unchanged.
 * {@link AllocationFaultRuns} runs the scenario once to count the allocations it passes, then once for
 * each allocation chosen, failing it with an {@link OutOfMemoryError}, alone or, on a heap that stays
 * full ({@link AllocationFaults#failFrom}), with every one after it: every one of the module's own; with
 * the engine's, every one on a heap that stays full, and failing alone, the first and the last at each
 * site and a seeded sample of the rest. The seed is printed; {@code -Dallocfault.seed} repeats a sample.
 * {@link WasmMemoryAllocationScenario} and {@link GrowAllocationScenario} say what they check.
 */
class WasmAllocationFaultTest extends AllocationFaultTestBase {

    /** Runs with the engine rewritten too, past its sites' first and last allocations. */
    private static final int SAMPLE = 40;
    /** The packages each scenario's loader defines itself: the engine's too, so that its classes and the module's are one set. */
    private static final List<String> CHILD_FIRST = List.of("io.samepage.wasm.", "io.samepage.core.", "org.agrona.collections.");

    /** The module's own allocations, every one: failed alone ({@code "one"}), or from it on ({@code "full-heap"}). */
    @ParameterizedTest
    @ValueSource(strings = {"one", "full-heap"})
    @Timeout(value = 60, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
    void aMemoryWhoseOwnAllocationFailsKeepsItsBytesAndSizeAndLeavesNoGuestBehind(String shape) throws Exception {
        Scenario life = load(WasmMemoryAllocationScenario.class, false, shape);
        assertNoFindings(life, AllocationFaultRuns.every(life));
    }

    @Test
    @Timeout(value = 120, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
    void aMemoryWhoseEngineAllocationFailsKeepsItsBytesAndSizeAndLeavesNoGuestBehind() throws Exception {
        Scenario life = load(WasmMemoryAllocationScenario.class, true, "one");
        assertNoFindings(life, runs.eachSiteAndASample(life, SAMPLE));
    }

    /**
     * On a heap that stays full, with the engine's allocations failing too: from each allocation on, the
     * module's and the engine's, so that the engine's clean-up (a guest's destroy, a failed creation's undo)
     * fails as well. From one in the engine's {@code createGuest} on, the engine left a guest, or its name,
     * behind ("a guest named 'wasm-342-1#1' exists already"; "the engine holds guests no memory holds"),
     * so these ran from the module's own allocations only until the engine was fixed.
     */
    @Test
    @Timeout(value = 120, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
    void aMemoryWhoseEngineRunsOutOfAHeapThatStaysFullKeepsItsBytesAndSizeAndLeavesNoGuestBehind() throws Exception {
        Scenario life = load(WasmMemoryAllocationScenario.class, true, "full-heap");
        assertNoFindings(life, AllocationFaultRuns.every(life));
    }

    /**
     * A program's {@code memory.grow} that runs out of heap in the grow's reservation sees -1, the memory
     * stays as it was, and the next grow grows it ({@link GrowAllocationScenario}): every allocation of the
     * grow, the engine's too, failed alone; then, on a heap that stays full, from each of them on (the
     * engine's clean-up after them runs out of heap too), as above.
     */
    @Test
    @Timeout(value = 120, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
    void aProgramsGrowThatRunsOutOfHeapSeesMinusOneAndTheMemoryAsItWasWorksOn() throws Exception {
        Scenario one = load(GrowAllocationScenario.class, true, "one");
        assertNoFindings(one, AllocationFaultRuns.every(one));
        Scenario full = load(GrowAllocationScenario.class, true, "full-heap");
        assertNoFindings(full, AllocationFaultRuns.every(full));
    }

    /**
     * {@code type} made with {@code shape}, through a loader of its own that rewrites {@code io.samepage.wasm}'s
     * main classes and, with {@code engineToo}, the engine's and Agrona's collections; counted.
     */
    private Scenario load(Class<?> type, boolean engineToo, String shape) throws Exception {
        List<Class<?>> rewritten = engineToo ? List.of(SamepageMemory.class, DedupEngine.class, Int2IntHashMap.class)
                : List.of(SamepageMemory.class);
        return loadRewritten(CHILD_FIRST, rewritten, type, type.getSimpleName() + " " + shape
                + (engineToo ? " with the engine" : ""), shape);
    }
}
