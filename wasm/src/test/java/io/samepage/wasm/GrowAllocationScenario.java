package io.samepage.wasm;

import static io.samepage.wasm.WatPrograms.call;

import com.dylibso.chicory.runtime.Instance;
import com.dylibso.chicory.runtime.Memory;
import com.dylibso.chicory.wasm.WasmModule;
import io.samepage.core.DedupEngine;
import io.samepage.core.EngineContext;
import io.samepage.core.EngineInvariants;
import io.samepage.core.Guest;
import io.samepage.testing.AllocationFaultLoader;
import io.samepage.testing.AllocationFaults;
import io.samepage.testing.ArmedScenario;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * A WebAssembly program's {@code memory.grow} that runs out of heap, for {@link WasmAllocationFaultTest},
 * which loads this class through an {@link AllocationFaultLoader}: an instance of {@code grow.wat} (one
 * page, at most six) on a {@link SamepageMemoryFactory}, with bytes stored in its page, calls
 * {@code memory.grow 1} in Chicory's interpreter, which makes the memory's second guest, with the k-th
 * allocation failing; with {@code "full-heap"} every allocation from the k-th on fails (the heap stays
 * full), so the grow's clean-up runs out of heap too.
 *
 * <p>The program must see what WebAssembly says a grow that cannot grow returns: -1, where the
 * {@link OutOfMemoryError} struck, else the old size, 1; nothing is thrown out of the call. After a -1
 * the memory is exactly as it was: one page, the program's {@code memory.size} 1, the same bytes, the
 * engine the same guests and frames, {@link EngineInvariants} hold; but on a full heap, where the destroy
 * of the guest the grow made runs out of heap too, the engine also holds that guest, which the memory
 * holds aside (last in {@link SamepageMemory#guests()}) until its next grow or close. Then it works on: the next
 * {@code memory.grow} grows it, a store into the new page reads back, and once the memory is closed the
 * engine holds no guest.
 *
 * <p>{@link #apply} returns the findings of one run, one line each ("" for none); {@link #getAsLong} the
 * allocations the last run's grow passed. Not thread safe.
 */
final class GrowAllocationScenario extends ArmedScenario {

    private static final int WASM_PAGE = Memory.PAGE_SIZE;

    private final WasmModule module = WatPrograms.module("grow");
    /** Every allocation from the k-th on fails, not the k-th alone. */
    private final boolean heapStaysFull;

    /** @param shape {@code "one"}: the k-th allocation fails; {@code "full-heap"}: every one from the k-th on */
    GrowAllocationScenario(String shape) {
        heapStaysFull = shape(shape, "one", "full-heap") == 1;
    }

    @Override
    protected String run(long failAt) {
        EngineContext context = new EngineContext().poolBytes(4L << 20).hashSeed(7);
        context.knobs().smartScan(false);
        DedupEngine engine = DedupEngine.create(context.conclude());
        try {
            return grow(failAt, context, engine);
        } finally {
            engine.close();
        }
    }

    private String grow(long failAt, EngineContext context, DedupEngine engine) {
        SamepageMemoryFactory factory = new SamepageMemoryFactory(engine, engine.createDomain("grow")).cachePages(2);
        Instance instance = factory.build(Instance.builder(module));
        SamepageMemory memory = (SamepageMemory) instance.memory();
        call(instance, "store32", 100, 0x12345678);
        call(instance, "store32", WASM_PAGE - 4, 0x0badcafe);
        memory.flush();
        byte[] before = memory.readBytes(0, WASM_PAGE);
        List<Guest> guestsBefore = engine.guests();
        long framesBefore = engine.framesInUse();

        long[] grown = {Long.MIN_VALUE};
        Throwable thrown = armed(() -> {
            if (heapStaysFull) {
                AllocationFaults.failFrom(failAt);      // re-armed before the first allocation: from the k-th on
            }
            grown[0] = call(instance, "grow", 1);
        });
        List<String> findings = new ArrayList<>();
        boolean struck = AllocationFaults.injectedAt() != null;
        if (thrown != null) {
            findings.add(where() + ": memory.grow threw " + thrown + " instead of returning " + (struck ? "-1" : "1"));
            return String.join("\n", findings);
        }
        if (grown[0] != 1 && !(struck && grown[0] == -1)) {
            findings.add(where() + ": memory.grow returned " + grown[0] + ", not " + (struck ? "-1 or 1" : "1"));
        }
        if (grown[0] == -1) {
            asItWas(memory, instance, engine, before, guestsBefore, framesBefore, findings);
        }
        try {
            EngineInvariants.assertConsistentWithHasherOf(context, engine, where());
        } catch (AssertionError e) {
            findings.add(e.getMessage());
        }
        if (findings.isEmpty()) {
            worksOn(memory, instance, engine, grown[0] == -1 ? 1 : 2, findings);
        }
        return String.join("\n", findings);
    }

    /** After a -1: the memory's size, bytes and guests, and the engine's guests and frames, as before the grow. */
    private void asItWas(SamepageMemory memory, Instance instance, DedupEngine engine, byte[] before,
            List<Guest> guestsBefore, long framesBefore, List<String> findings) {
        if (memory.pages() != 1 || call(instance, "size") != 1) {
            findings.add(where() + ": memory.grow returned -1, but the memory has " + memory.pages() + " pages ("
                    + call(instance, "size") + " to the program), not 1");
            return;
        }
        int at = Arrays.mismatch(memory.readBytes(0, WASM_PAGE), before);
        if (at >= 0) {
            findings.add(where() + ": memory.grow returned -1, but the memory reads otherwise at byte " + at);
        }
        List<Guest> held = Arrays.asList(memory.guests());
        List<Guest> added = new ArrayList<>(engine.guests());
        added.removeAll(guestsBefore);
        if (!held.getFirst().equals(guestsBefore.getFirst()) || !engine.guests().containsAll(guestsBefore)
                || !(added.isEmpty() || heapStaysFull && held.size() == 2 && added.equals(held.subList(1, 2)))) {
            findings.add(where() + ": memory.grow returned -1, but the memory holds " + held + ", and the engine "
                    + engine.guests() + ", not " + guestsBefore + (heapStaysFull ? " (and at most the grow's guest the "
                    + "memory holds aside)" : ""));
        }
        if (engine.framesInUse() != framesBefore) {
            findings.add(where() + ": memory.grow returned -1, but " + engine.framesInUse() + " frames are in use, not "
                    + framesBefore);
        }
    }

    /** The next grow grows the memory of {@code pages} pages, a store into the new page reads back, the close leaves no guest. */
    private void worksOn(SamepageMemory memory, Instance instance, DedupEngine engine, int pages, List<String> findings) {
        int next = call(instance, "grow", 1);
        if (next != pages) {
            findings.add(where() + ": the next memory.grow returned " + next + ", not " + pages);
            return;
        }
        int address = pages * WASM_PAGE + 8;
        call(instance, "store32", address, 0x2468ace0);
        if (call(instance, "load32", address) != 0x2468ace0 || call(instance, "load32", 100) != 0x12345678) {
            findings.add(where() + ": after the next memory.grow, a store into the new page, or the first page, "
                    + "reads otherwise");
        }
        memory.close();
        if (!engine.guests().isEmpty()) {
            findings.add(where() + ": once the memory is closed, the engine still holds " + engine.guests());
        }
    }
}
