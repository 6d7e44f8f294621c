package io.samepage.wasm;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.dylibso.chicory.runtime.ByteArrayMemory;
import com.dylibso.chicory.runtime.Instance;
import com.dylibso.chicory.runtime.Memory;
import com.dylibso.chicory.wasm.WasmModule;
import io.samepage.core.DedupEngine;
import io.samepage.core.EngineContext;
import io.samepage.core.Guest;
import io.samepage.core.Scanner;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The same WebAssembly programs on Chicory's {@code ByteArrayMemory} and on {@link SamepageMemory}, step
 * by step, with the engine's scanner run between steps until two full scans change nothing (scanUntilStable): every return value, every trap
 * (class and message) and every byte of memory must be equal, seen through the memory and, after a
 * flush, through the engine's guests.
 *
 * <p>Per program and seed, three Samepage instances run beside two reference instances: A and C replay
 * one random sequence of calls (so their pages are equal and merge, and their writes then break the
 * sharing), B another; the first of them installs the data-segment image and the others map it.
 * Between steps each Samepage memory is flushed, released, or left with its cache as it is,
 * at random. Seeds: {@code -Dwasm.seeds=N} runs seeds 1..N (default 3), {@code -Dwasm.seed=S} runs
 * seed S alone; {@code -Dwasm.steps} sets the calls per seed (default 25). Each seed prints the command
 * that reruns it.
 */
class WasmDifferentialTest {

    private static final int SEEDS = Integer.getInteger("wasm.seeds", 3);
    private static final int STEPS = Integer.getInteger("wasm.steps", 25);
    private static final Integer ONE_SEED = Integer.getInteger("wasm.seed");

    @ParameterizedTest
    @ValueSource(strings = {"sort", "hashtable", "grow", "bulk", "atomics", "trap"})
    void programsRunAlikeOnByteArrayMemoryAndOnSamepageMemory(String program) {
        WasmModule module = WatPrograms.module(program);
        List<String> mismatches = new ArrayList<>();
        long merges = 0;
        List<Integer> seeds = new ArrayList<>();
        if (ONE_SEED != null) {
            seeds.add(ONE_SEED);
        } else {
            for (int s = 1; s <= SEEDS; s++) {
                seeds.add(s);
            }
        }
        for (int seed : seeds) {
            System.out.println("wasm differential: program " + program + " seed " + seed + "; rerun with: ./mvnw -o -q -pl wasm -am test "
                    + "-Dfuzz.skip -Dtest=WasmDifferentialTest -Dsurefire.failIfNoSpecifiedTests=false -Dwasm.seed=" + seed);
            merges += run(module, program, seed, mismatches);
        }
        System.out.println("wasm differential: program " + program + ": " + seeds.size() + " seeds x " + STEPS + " steps, "
                + mismatches.size() + " mismatches, " + merges + " merges");
        assertEquals(List.of(), mismatches, "mismatches between ByteArrayMemory and SamepageMemory");
        assertTrue(merges > 0, program + ": the scanner merged nothing, so the test did not exercise merged pages");
    }

    /** Runs one seed; returns the scanner's merges. */
    private static long run(WasmModule module, String program, int seed, List<String> mismatches) {
        EngineContext context = new EngineContext().poolBytes(256L << 20).hashSeed(seed).conclude();
        context.knobs().useZeroPages(true);
        try (DedupEngine engine = DedupEngine.create(context)) {
            SamepageMemoryFactory factory = new SamepageMemoryFactory(engine, engine.createDomain("differential"))
                    .cachePages(1 << new Random(seed).nextInt(5));
            Instance ref0 = Instance.builder(module).withMemoryFactory(ByteArrayMemory::new).build();
            Instance ref1 = Instance.builder(module).withMemoryFactory(ByteArrayMemory::new).build();
            Instance a = Instance.builder(module).withMemoryFactory(factory).build();
            Instance b = Instance.builder(module).withMemoryFactory(factory).build();
            Instance c = Instance.builder(module).withMemoryFactory(factory).build();
            Random steps0 = new Random(seed * 1_000_003L);
            Random steps1 = new Random(seed * 1_000_003L + 1);
            Random safePoints = new Random(seed * 7L);
            String where = program + " seed " + seed;
            compareMemory(where + " after instantiation", ref0, a, false, mismatches);
            compareMemory(where + " after instantiation", ref1, b, false, mismatches);
            for (int step = 0; step < STEPS && mismatches.isEmpty(); step++) {
                Call call0 = Call.next(program, steps0);
                Call call1 = Call.next(program, steps1);
                String at0 = where + " step " + step + " " + call0;
                String at1 = where + " step " + step + " " + call1;
                String expected0 = call0.on(ref0);
                compare(at0 + " on A", expected0, call0.on(a), mismatches);
                compare(at0 + " on C", expected0, call0.on(c), mismatches);
                compare(at1 + " on B", call1.on(ref1), call1.on(b), mismatches);
                boolean[] flushed = new boolean[3];
                Instance[] samepage = {a, b, c};
                for (int i = 0; i < 3; i++) {
                    SamepageMemory memory = (SamepageMemory) samepage[i].memory();
                    int choice = safePoints.nextInt(10);
                    if (choice < 6) {
                        memory.flush();
                        flushed[i] = true;
                    } else if (choice < 8) {
                        memory.release();
                        flushed[i] = true;
                    }
                }
                engine.scanner().scanUntilStable(Scanner.DEFAULT_MAX_FULL_SCANS_TO_SETTLE);  // every merge it can
                compareMemory(at0 + " on A", ref0, a, flushed[0], mismatches);
                compareMemory(at1 + " on B", ref1, b, flushed[1], mismatches);
                compareMemory(at0 + " on C", ref0, c, flushed[2], mismatches);
            }
            return engine.scanner().merges();
        }
    }

    private static void compare(String where, String expected, String actual, List<String> mismatches) {
        if (!expected.equals(actual)) {
            mismatches.add(where + ": ByteArrayMemory gave " + expected + ", SamepageMemory gave " + actual);
        }
    }

    /** Every byte through the memory; with {@code flushed}, every byte of the engine's guests too. */
    private static void compareMemory(String where, Instance reference, Instance samepage, boolean flushed,
                                      List<String> mismatches) {
        Memory expected = reference.memory();
        Memory actual = samepage.memory();
        if (expected.pages() != actual.pages()) {
            mismatches.add(where + ": " + expected.pages() + " pages against " + actual.pages());
            return;
        }
        byte[] want = expected.readBytes(0, expected.pages() * Memory.PAGE_SIZE);
        int differs = Arrays.mismatch(want, actual.readBytes(0, want.length));
        if (differs >= 0) {
            mismatches.add(where + ": memory differs first at address " + differs);
            return;
        }
        if (flushed) {
            byte[] held = new byte[want.length];
            int at = 0;
            for (Guest guest : ((SamepageMemory) actual).guests()) {
                int part = (int) Math.min(guest.sizeBytes(), held.length - at);
                guest.read(0, held, at, part);
                at += part;
            }
            differs = Arrays.mismatch(want, held);
            if (differs >= 0) {
                mismatches.add(where + ": the engine's guests differ first at address " + differs);
            }
        }
    }

    @Test
    void anInstanceWhoseDataSegmentDoesNotFitFailsAsOnByteArrayMemory() {
        WasmModule module = WatPrograms.module("oob_segment");
        EngineContext context = new EngineContext().poolBytes(16L << 20).conclude();
        try (DedupEngine engine = DedupEngine.create(context)) {
            SamepageMemoryFactory factory = new SamepageMemoryFactory(engine, engine.createDomain("oob"));
            String expected = Call.outcome(() -> Instance.builder(module).withMemoryFactory(ByteArrayMemory::new).build());
            String actual = Call.outcome(() -> Instance.builder(module).withMemoryFactory(factory).build());
            assertTrue(expected.startsWith("com.dylibso.chicory.wasm.UninstantiableException"), expected);
            assertEquals(expected, actual);
        }
    }
}
