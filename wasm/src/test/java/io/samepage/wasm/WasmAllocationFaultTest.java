package io.samepage.wasm;

import static org.junit.jupiter.api.Assertions.assertEquals;

import io.samepage.core.DedupEngine;
import io.samepage.testing.AllocationFaultLoader;
import io.samepage.testing.AllocationFaultRuns;
import io.samepage.testing.AllocationFaultRuns.Outcome;
import io.samepage.testing.AllocationFaultRuns.Scenario;
import io.samepage.testing.AllocationFaults;
import java.util.List;
import java.util.Set;
import org.agrona.collections.Int2IntHashMap;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Whatever allocation of a WebAssembly memory on the engine fails, the call it fails in (a memory made
 * with its data-segment image, a load, a store, a bulk write, a {@code grow}, a flush, a close) leaves
 * the memory reading what it read before or what the call makes of it, its size old or new, no guest
 * behind that no memory holds, and the next grow and the next instance working. The classes of
 * {@code io.samepage.wasm} (and, for the second test, the engine's and Agrona's collections under them)
 * are loaded child first by an {@link AllocationFaultLoader}, which rewrites them to ask
 * {@link AllocationFaults} before each allocation (and before each call of
 * {@code Throwable.addSuppressed}, which allocates); the engine's classes are loaded by it in every case,
 * so that the loader's and the engine's classes are one set. Chicory comes from the parent, unchanged.
 * {@link AllocationFaultRuns} runs the scenario once to count the allocations it passes, then once for
 * each allocation chosen, failing it with an {@link OutOfMemoryError}: every one of the module's own;
 * with the engine's, the first and the last at each site and a seeded sample of the rest. The seed is
 * printed; {@code -Dallocfault.seed} repeats a sample. {@link WasmMemoryAllocationScenario} says what
 * it checks.
 */
class WasmAllocationFaultTest {

    /** Runs with the engine rewritten too, past its sites' first and last allocations. */
    private static final int SAMPLE = 40;

    private static final AllocationFaultRuns RUNS = new AllocationFaultRuns("WasmAllocationFaultTest");

    @AfterEach
    void disarm() {
        AllocationFaults.reset();
    }

    @Test
    @Timeout(value = 60, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
    void aMemoryWhoseOwnAllocationFailsKeepsItsBytesAndSizeAndLeavesNoGuestBehind() throws Exception {
        Scenario life = load(false);
        assertNoFindings(life, AllocationFaultRuns.every(life));
    }

    @Test
    @Timeout(value = 120, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
    void aMemoryWhoseEngineAllocationFailsKeepsItsBytesAndSizeAndLeavesNoGuestBehind() throws Exception {
        Scenario life = load(true);
        assertNoFindings(life, RUNS.eachSiteAndASample(life, SAMPLE));
    }

    /**
     * The scenario, through a loader of its own that rewrites {@code io.samepage.wasm}'s main classes and,
     * with {@code engineToo}, the engine's and Agrona's collections; counted.
     */
    private static Scenario load(boolean engineToo) throws Exception {
        ClassLoader parent = WasmAllocationFaultTest.class.getClassLoader();
        AllocationFaultLoader loader = new AllocationFaultLoader(parent,
                List.of("io.samepage.wasm.", "io.samepage.core.", "org.agrona.collections."),
                engineToo ? AllocationFaultLoader.fromCodeSourcesOf(parent, SamepageMemory.class, DedupEngine.class, Int2IntHashMap.class)
                        : AllocationFaultLoader.fromCodeSourcesOf(parent, SamepageMemory.class),
                Set.of("java/lang/Throwable.addSuppressed"));
        Class<?> type = WasmMemoryAllocationScenario.class;
        return AllocationFaultRuns.load(loader, type, type.getSimpleName() + (engineToo ? " with the engine" : ""));
    }

    /**
     * Fails each chosen allocation in a run of its own; no run may find anything, and each must fail at
     * the site the counting run passed as its k-th (one thread makes every allocation).
     */
    private static void assertNoFindings(Scenario scenario, List<Long> chosen) {
        Outcome outcome = RUNS.failEach(scenario, chosen);
        assertEquals(List.of(), outcome.findings(), scenario.name() + ": findings");
        assertEquals(List.of(), outcome.notReached(), scenario.name() + ": runs that did not fail at the site the counting run passed there");
    }
}
