package io.samepage.wasm;

import com.dylibso.chicory.runtime.ByteArrayMemory;
import static io.samepage.wasm.WatPrograms.call;

import com.dylibso.chicory.runtime.Instance;
import com.dylibso.chicory.runtime.Memory;
import com.dylibso.chicory.wasm.WasmModule;
import com.dylibso.chicory.wasm.types.MemoryLimits;
import io.samepage.core.DedupEngine;
import io.samepage.core.EngineContext;
import io.samepage.core.EngineInvariants;
import io.samepage.core.Guest;
import io.samepage.core.MergeDomain;
import io.samepage.testing.AllocationFaultLoader;
import io.samepage.testing.AllocationFaults;
import io.samepage.testing.ArmedScenario;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Objects;
import java.util.Set;
import java.util.function.Function;

/**
 * The life of two instances of one module on a {@link SamepageMemoryFactory}, with the k-th allocation
 * failing, for {@link WasmAllocationFaultTest}, which loads this class through an
 * {@link AllocationFaultLoader}: the factory is made; two instances of {@code image_grow.wat} are built
 * with it (the first installs the data-segment image, the second maps it); then loads, stores, bulk
 * writes, fills and copies (through a two-page cache, so stored-to pages are evicted and written back),
 * full scans, {@code memory.grow} in the middle of use (in the interpreter and by the host; each of the
 * first instance's grows makes a guest of its own), a flush, a release, and the two closes. Each call
 * on a memory is made on Chicory's {@code ByteArrayMemory} too, which says what the memory must return
 * and read.
 *
 * <p>Every step either returns what {@code ByteArrayMemory} returns or throws the injected
 * {@link OutOfMemoryError}, but a {@code grow}, which returns -1 where that struck in it; the steps after
 * one that threw, or such a grow, are not made. Then what an embedder relies on: each memory has the
 * pages it had before the step that threw (a {@code grow} that returns -1 grows nothing) and reads what {@code ByteArrayMemory} reads, but the one the step was on, which reads either
 * that or what the step would have made of it, whole (no page reads zeros, or another instance's
 * bytes); the engine holds no guest that no memory holds (a failed build's memory is closed, a failed
 * grow's guest destroyed), and after a close that threw, at most the one guest whose destroy threw;
 * {@link EngineInvariants} hold. Then the next {@code grow} of each memory, and a bulk write and a store
 * into what it grew, do what {@code ByteArrayMemory}'s do; the next instance (on a new factory, if making
 * the factory failed) reads the image; and once every memory is closed (a close that threw, again), the
 * engine holds no guest and no frame but its domains' zero frames.
 *
 * <p>{@link #apply} returns the findings of one run, one line each ("" for none); {@link #getAsLong} the
 * allocations the last run's steps passed ({@link ArmedScenario}). Not thread safe.
 */
final class WasmMemoryAllocationScenario extends ArmedScenario {

    private static final int WASM_PAGE = Memory.PAGE_SIZE;
    private static final int PAGE = 4096;
    private static final long POOL_BYTES = 8L << 20;
    /** Two slots: loads and stores of three pages evict, and write back, a stored-to page. */
    private static final int CACHE_PAGES = 2;

    private final WasmModule module;
    /** What a new instance's memory reads: {@code ByteArrayMemory}'s after the data segments. */
    private final byte[] image;
    /** Every allocation from the k-th on fails, not the k-th alone. */
    private final boolean heapStaysFull;

    /**
     * @param shape {@code "one"}: the k-th allocation fails; {@code "full-heap"}: every one from the k-th on
     *              fails until the steps end (the heap stays full), so a clean-up that allocates fails too
     */
    WasmMemoryAllocationScenario(String shape) {
        heapStaysFull = shape(shape, "one", "full-heap") == 1;
        module = WatPrograms.module("image_grow");
        image = freshModel().readBytes(0, WASM_PAGE);
    }

    @Override
    protected String run(long failAt) {
        EngineContext context = new EngineContext().poolBytes(POOL_BYTES).hashSeed(7);
        context.knobs().smartScan(false);
        DedupEngine engine = DedupEngine.create(context.conclude());
        try {
            Run run = new Run(context, engine);
            run.run(failAt);
            return String.join("\n", run.findings);
        } finally {
            engine.close();
        }
    }

    /** An instance, its memory, and Chicory's {@code ByteArrayMemory} given the same calls. */
    private static final class Tracked {
        final String name;
        Instance instance;
        SamepageMemory memory;
        Memory model;
        boolean closed;
        boolean closeThrew;

        Tracked(String name) {
            this.name = name;
        }
    }

    /**
     * The step that threw: the memory it was on (null for none), what that memory's model would read
     * after it (its model itself is left as before it), and what it threw.
     */
    private record Failed(String step, Tracked on, byte[] after, Throwable thrown) {
    }

    /** Ends the steps once one threw; made once, with no stack trace, so that throwing it allocates nothing. */
    private static final RuntimeException STOP = new RuntimeException("a step threw", null, false, false) {
    };

    /** Ends the steps at a grow that returned -1 where the injected failure struck in it; allocates nothing. */
    private static final RuntimeException GROW_REFUSED = new RuntimeException("memory.grow returned -1", null, false,
            false) {
    };

    /** One run's engine, instances and findings. */
    private final class Run {
        final EngineContext context;
        final DedupEngine engine;
        final MergeDomain domain;
        final long baseFrames;
        final List<Tracked> tracked = new ArrayList<>();
        final List<String> findings = new ArrayList<>();
        SamepageMemoryFactory factory;
        Failed failed;
        String where;

        Run(EngineContext context, DedupEngine engine) {
            this.context = context;
            this.engine = engine;
            this.domain = engine.createDomain("wasm");
            this.baseFrames = engine.framesInUse();
        }

        void run(long failAt) {
            Throwable thrown = armed(() -> {
                if (heapStaysFull) {
                    AllocationFaults.failFrom(failAt);      // re-armed before the first allocation: from the k-th on
                }
                steps();
            });
            where = where() + (failed == null ? "" : " (" + failed.step + ")");
            if (thrown != STOP) {
                expectInjected(thrown, where, findings);   // a step's throw is kept in failed, and ends them with STOP
            }
            if (failed != null && failed.thrown != GROW_REFUSED) {
                expectInjected(failed.thrown, where, findings);
            }
            checkMemories();
            checkGuests();
            try {
                EngineInvariants.assertConsistentWithHasherOf(context, engine, where);
            } catch (AssertionError e) {
                findings.add(e.getMessage());
            }
            if (findings.isEmpty()) {
                next();
            }
        }

        private void steps() {
            step(null, "making the factory", () -> factory = new SamepageMemoryFactory(engine, domain).cachePages(CACHE_PAGES));
            Tracked first = build("first");
            Tracked second = build("second");
            on(first, "a store into image page 1", m -> m.writeI32(PAGE + 8, 0x11223344));
            on(first, "a store across image pages 1 and 2", m -> m.writeLong(2 * PAGE - 4, 0x0102030405060708L));
            on(second, "a store into image page 0", m -> m.writeByte(100, (byte) 'X'));
            read(first, "a load that evicts stored-to page 1", m -> m.readInt(5 * PAGE + 12));
            on(first, "a store that evicts page 5", m -> m.writeShort(3 * PAGE + 2, (short) 0x7777));
            on(first, "a bulk write of 6000 bytes", m -> m.write(20000, pattern(6000, 1), 0, 6000));
            on(first, "a fill of 100 bytes across engine pages 7 and 8", m -> m.fill((byte) 0x5a, 8 * PAGE - 50, 8 * PAGE + 50));
            on(first, "a fill of 9000 bytes", m -> m.fill((byte) 0x33, 36000, 45000));
            on(first, "a copy of 300 bytes out of image page 1", m -> m.copy(40000, PAGE + 10, 300));
            on(second, "a copy of 5000 bytes over image pages 1 and 2", m -> m.copy(PAGE + 100, 12000, 5000));
            step(null, "a full scan", () -> engine.scanner().scanFullPass());
            grow(first, "memory.grow 2 in the interpreter", m -> call(first.instance, "grow", 2), 2);
            on(first, "a store into a grown page", m -> m.writeI32(WASM_PAGE + 40, 7));
            on(first, "a bulk write across the first two guests", m -> m.write(WASM_PAGE - 2500, pattern(5000, 2), 0, 5000));
            grow(second, "a grow by 1", m -> m.grow(1), 1);
            grow(first, "a grow by 5", m -> m.grow(5), 5);
            on(first, "a fill of 200000 bytes across the second and third guests",
                    m -> m.fill((byte) 7, 3 * WASM_PAGE - 100_000, 3 * WASM_PAGE + 100_000));
            read(first, "a read of 8 pages", m -> m.readBytes(0, 8 * WASM_PAGE));
            change(second, "a store in the interpreter", m -> call(second.instance, "store32", WASM_PAGE + 4, 99),
                    m -> {
                        m.writeI32(WASM_PAGE + 4, 99);
                        return 0;
                    });
            change(first, "a flush", m -> {
                first.memory.flush();
                return null;
            }, m -> null);
            change(second, "a release", m -> {
                second.memory.release();
                return null;
            }, m -> null);
            step(null, "a second full scan", () -> engine.scanner().scanFullPass());
            read(second, "a load after the release", m -> m.readLong(PAGE + 8));
            close(second);
            close(first);
        }

        /** Builds an instance with the factory. */
        private Tracked build(String name) {
            Tracked t = new Tracked(name);
            step(null, "building " + name, () -> t.instance = factory.build(Instance.builder(module)));
            t.memory = (SamepageMemory) t.instance.memory();
            t.model = freshModel();
            tracked.add(t);
            return t;
        }

        private void close(Tracked t) {
            try {
                t.memory.close();
                t.closed = true;
            } catch (Throwable e) {
                t.closeThrew = true;
                failed = new Failed("closing " + t.name, null, null, e);
                throw STOP;
            }
        }

        /** A step that is no call on a memory. */
        private void step(Tracked on, String what, Runnable action) {
            try {
                action.run();
            } catch (Throwable e) {
                failed = new Failed(what, on, null, e);
                throw STOP;
            }
        }

        /** A call on {@code t}'s memory that returns nothing. */
        private void on(Tracked t, String what, MemoryCall call) {
            change(t, what, m -> {
                call.on(m);
                return null;
            }, m -> {
                call.on(m);
                return null;
            });
        }

        /**
         * A grow of {@code t} by {@code pages}, as {@link #change}; but a -1 where the injected failure struck
         * in it is the grow refused, as WebAssembly allows one: the steps end there, and the memory must
         * be as it was.
         */
        private void grow(Tracked t, String what, Function<Memory, Object> real, int pages) {
            boolean struckBefore = AllocationFaults.injectedAt() != null;
            change(t, what, m -> {
                Object got = real.apply(m);
                if (Integer.valueOf(-1).equals(got) && !struckBefore && AllocationFaults.injectedAt() != null) {
                    throw GROW_REFUSED;
                }
                return got;
            }, m -> m.grow(pages));
        }

        /** A call that changes nothing, whose result must be {@code ByteArrayMemory}'s. */
        private void read(Tracked t, String what, Function<Memory, Object> call) {
            change(t, what, call, call);
        }

        /**
         * {@code real} on {@code t}'s memory, and, if it returns, {@code model} on the model; the two must
         * return the same. If it throws, what the model would read after the call is kept, to check the
         * memory against.
         */
        private void change(Tracked t, String what, Function<Memory, Object> real, Function<Memory, Object> model) {
            Object got;
            try {
                got = real.apply(t.memory);
            } catch (Throwable e) {
                Memory after = copy(t.model);
                try {
                    model.apply(after);
                } catch (RuntimeException m) {
                    after = copy(t.model);      // ByteArrayMemory refuses it too: it changes nothing
                }
                failed = new Failed(what + " on " + t.name, t, after.readBytes(0, after.pages() * WASM_PAGE), e);
                throw STOP;
            }
            Object expected = model.apply(t.model);
            if (!Objects.deepEquals(got, expected)) {
                findings.add(where() + ": " + what + " on " + t.name + " returned "
                        + shown(got) + ", not " + shown(expected));
            }
        }

        /** Each open memory has its model's pages and reads what its model reads (or, the failed step's, what it would after). */
        private void checkMemories() {
            for (Tracked t : tracked) {
                if (t.closed || t.closeThrew) {
                    continue;
                }
                int pages = t.memory.pages();
                if (pages != t.model.pages()) {
                    findings.add(where + ": " + t.name + " has " + pages + " pages, not the " + t.model.pages()
                            + " it had before the step that threw");
                    continue;
                }
                byte[] read = t.memory.readBytes(0, pages * WASM_PAGE);
                byte[] before = t.model.readBytes(0, pages * WASM_PAGE);
                int at = Arrays.mismatch(read, before);
                if (at >= 0 && failed != null && failed.on == t && Arrays.equals(read, failed.after)) {
                    continue;       // the failed step was made whole
                }
                if (at >= 0) {
                    findings.add(where + ": " + t.name + " reads " + read[at] + " at byte " + at + " (engine page "
                            + at / PAGE + "), not the " + before[at] + " stored there"
                            + (failed != null && failed.on == t ? ", neither before nor after the step" : ""));
                }
            }
        }

        /** The engine holds the guests of the open memories and nothing else; a close that threw left at most one. */
        private void checkGuests() {
            Set<Guest> held = Collections.newSetFromMap(new IdentityHashMap<>());
            List<Guest> live = engine.guests();
            for (Tracked t : tracked) {
                if (t.closeThrew) {
                    List<String> left = Arrays.stream(t.memory.guests()).filter(live::contains).map(Guest::name).toList();
                    if (left.size() > 1 && !heapStaysFull) {      // on a full heap every destroy may throw
                        findings.add(where + ": the close of " + t.name + " threw and left " + left
                                + " up: more than the one guest whose destroy threw");
                    }
                    held.addAll(Arrays.asList(t.memory.guests()));
                } else if (!t.closed) {
                    held.addAll(Arrays.asList(t.memory.guests()));
                }
            }
            if (factory != null) {
                held.addAll(factory.unclosedGuests());      // a failed build's, closed again at the next
            }
            List<String> orphans = live.stream().filter(g -> !held.contains(g)).map(Guest::name).toList();
            if (!orphans.isEmpty()) {
                findings.add(where + ": the engine holds guests no memory holds: " + orphans);
            }
        }

        /** The next grow and writes of each open memory, the next instance, then every close. */
        private void next() {
            for (Tracked t : tracked) {
                if (t.closed || t.closeThrew) {
                    continue;
                }
                int got = t.memory.grow(1);
                int expected = t.model.grow(1);
                if (got != expected) {
                    findings.add(where + ": the next grow of " + t.name + " returned " + got + ", not " + expected);
                    return;
                }
                int end = t.model.pages() * WASM_PAGE;
                byte[] bytes = pattern(5000, 3);
                for (Memory m : new Memory[] {t.memory, t.model}) {
                    m.write(end - bytes.length, bytes, 0, bytes.length);
                    m.writeI32(end - WASM_PAGE + 8, 0x2468);
                }
                int at = Arrays.mismatch(t.memory.readBytes(0, end), t.model.readBytes(0, end));
                if (at >= 0) {
                    findings.add(where + ": after the next grow and writes, " + t.name + " reads otherwise than "
                            + "ByteArrayMemory at byte " + at);
                }
            }
            SamepageMemoryFactory memories = factory != null ? factory
                    : new SamepageMemoryFactory(engine, domain).cachePages(CACHE_PAGES);
            Tracked next = new Tracked("next");
            next.instance = memories.build(Instance.builder(module));
            next.memory = (SamepageMemory) next.instance.memory();
            tracked.add(next);
            int at = Arrays.mismatch(next.memory.readBytes(0, WASM_PAGE), image);
            if (at >= 0) {
                findings.add(where + ": the next instance reads otherwise than the image at byte " + at);
            }
            for (Tracked t : tracked) {
                if (!t.closed) {
                    t.memory.close();
                }
            }
            List<String> left = engine.guests().stream().map(Guest::name).toList();
            if (!left.isEmpty()) {
                findings.add(where + ": once every memory is closed, the engine still holds " + left);
            }
            if (engine.framesInUse() != baseFrames) {
                findings.add(where + ": once every memory is closed, " + engine.framesInUse() + " frames are in use, not "
                        + baseFrames);
            }
            try {
                EngineInvariants.assertConsistentWithHasherOf(context, engine, where + ", once every memory is closed");
            } catch (AssertionError e) {
                findings.add(e.getMessage());
            }
        }
    }

    /** A call on a memory that returns nothing (a store, a bulk write, a fill, a copy). */
    @FunctionalInterface
    private interface MemoryCall {
        void on(Memory memory);
    }

    /** A new instance's memory as {@code ByteArrayMemory} holds it. */
    private Memory freshModel() {
        return Instance.builder(module).withMemoryFactory(ByteArrayMemory::new).build().memory();
    }

    private static Memory copy(Memory model) {
        int pages = model.pages();
        Memory copy = new ByteArrayMemory(new MemoryLimits(pages, model.maximumPages()));
        copy.write(0, model.readBytes(0, pages * WASM_PAGE), 0, pages * WASM_PAGE);
        return copy;
    }

    private static byte[] pattern(int length, int seed) {
        byte[] bytes = new byte[length];
        for (int i = 0; i < length; i++) {
            bytes[i] = (byte) (i * 31 + seed * 7 + 1);
        }
        return bytes;
    }

    private static String shown(Object value) {
        return value instanceof byte[] b ? b.length + " bytes" : String.valueOf(value);
    }
}
