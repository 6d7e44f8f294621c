package io.samepage.image;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.samepage.core.DedupEngine;
import io.samepage.testing.AllocationFaultLoader;
import io.samepage.testing.AllocationFaults;
import java.lang.reflect.Constructor;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.SplittableRandom;
import java.util.TreeSet;
import java.util.function.LongFunction;
import java.util.function.LongSupplier;
import org.agrona.collections.Int2IntHashMap;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * Whatever allocation of the image index fails, the build, open or load it fails in leaves nothing
 * half done: no index file half written or temporary file left, no mapping of an index file left, no
 * page of a guest loaded past the block where its load stopped, no staging guest, no stuck thread,
 * and the next load goes well. The classes of {@code io.samepage.image} (and, for the loads, the
 * engine's and Agrona's collections under them) are loaded child first by an {@link AllocationFaultLoader},
 * which rewrites them to ask {@link AllocationFaults} before each allocation (and before each call of
 * {@code Throwable.addSuppressed}, which allocates, as failing a batch does); the engine's classes are
 * loaded by it in every case, so that the loader's and the engine's classes are one set. Each scenario runs
 * once to count the allocations it passes, then once for each allocation chosen, failing it with an
 * {@link OutOfMemoryError}: every one for the build and the open; for the loads, which take longer, the
 * first at each site and a seeded sample of the rest. The seed is printed; {@code -Dallocfault.seed} repeats a sample. The scenarios say what they
 * check: {@link IndexBuildAllocationScenario}, {@link IndexOpenAllocationScenario},
 * {@link ImageLoadAllocationScenario}.
 */
class ImageAllocationFaultTest {

    /** Runs of a load, past its sites' first allocations: each run loads the image four times. */
    private static final int SAMPLE = 30;

    @TempDir
    Path dir;

    @AfterEach
    void disarm() {
        AllocationFaults.reset();
    }

    @Test
    @Timeout(value = 60, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
    void anIndexBuildThatRunsOutOfHeapLeavesNoHalfWrittenIndex() throws Exception {
        Scenario build = load(IndexBuildAllocationScenario.class, null, false);
        assertNoFindings(build, every(build), false);
    }

    @Test
    @Timeout(value = 60, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
    void anIndexOpenThatRunsOutOfHeapLeavesNoMappingOfTheFile() throws Exception {
        Scenario open = load(IndexOpenAllocationScenario.class, null, false);
        assertNoFindings(open, every(open), true);
    }

    /** A load on the loading thread alone: the first allocation at each site and a seeded sample. */
    @Test
    @Timeout(value = 60, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
    void aLoadOnTheLoadingThreadThatRunsOutOfHeapStopsWholeAndTheNextLoadGoesWell() throws Exception {
        Scenario direct = load(ImageLoadAllocationScenario.class, "direct", true);
        assertNoFindings(direct, firstAtEachSiteAndASample(direct), true);
    }

    /**
     * Loads on two worker threads: the first allocation at each site and a seeded sample; which allocation
     * is the k-th depends on how the workers and the loading thread interleave, so a run need not fail at
     * the site the counting run passed there.
     */
    @Test
    @Timeout(value = 60, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
    void aLoadOnWorkerThreadsThatRunsOutOfHeapStopsWholeAndTheNextLoadGoesWell() throws Exception {
        Scenario workers = load(ImageLoadAllocationScenario.class, "workers", true);
        assertNoFindings(workers, firstAtEachSiteAndASample(workers), false);
    }

    /**
     * Loads on two worker threads while the heap stays full: every allocation from the k-th on fails, k
     * the first allocation at each site, until the loads end. Clean-up that allocates fails too: a worker
     * failing its batch must still finish it, and a staging guest whose destroy fails is destroyed by the
     * next load.
     */
    @Test
    @Timeout(value = 60, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
    void loadsWhileTheHeapStaysFullStopAndTheNextLoadGoesWell() throws Exception {
        Scenario full = load(ImageLoadAllocationScenario.class, "full-heap", true);
        List<Long> chosen = new ArrayList<>();
        Set<String> seen = new LinkedHashSet<>();
        for (int i = 0; i < full.sites().size(); i++) {
            if (seen.add(full.sites().get(i))) {
                chosen.add(i + 1L);
            }
        }
        assertNoFindings(full, chosen, false);
    }

    /**
     * The first allocation the counting run passed at each site, and {@value #SAMPLE} more drawn with
     * {@code -Dallocfault.seed}, else a new seed, which is printed so that a run can be repeated.
     */
    private static List<Long> firstAtEachSiteAndASample(Scenario scenario) {
        long seed = Long.getLong("allocfault.seed", System.nanoTime());
        System.out.println("ImageAllocationFaultTest: " + scenario.name() + ", -Dallocfault.seed=" + seed);
        Set<Long> chosen = new TreeSet<>();
        Set<String> seen = new LinkedHashSet<>();
        for (int i = 0; i < scenario.sites().size(); i++) {
            if (seen.add(scenario.sites().get(i))) {
                chosen.add(i + 1L);
            }
        }
        SplittableRandom random = new SplittableRandom(seed);
        for (int i = 0; i < SAMPLE; i++) {
            chosen.add(random.nextLong(1, scenario.allocations() + 1));
        }
        return new ArrayList<>(chosen);
    }

    private static List<Long> every(Scenario scenario) {
        List<Long> every = new ArrayList<>();
        for (long k = 1; k <= scenario.allocations(); k++) {
            every.add(k);
        }
        return every;
    }

    /** A scenario loaded through a loader of its own, counted by a run that fails nothing after one that loads its classes. */
    private record Scenario(String name, LongFunction<String> run, long allocations, List<String> sites) {
    }

    /**
     * Loads {@code type}, made with {@code shape} (or without, if null) and a directory of its own, through
     * a loader of its own that rewrites {@code io.samepage.image}'s main classes, and with {@code engineToo}
     * the engine's and Agrona's collections; then counts it.
     */
    private Scenario load(Class<?> type, String shape, boolean engineToo) throws Exception {
        ClassLoader parent = ImageAllocationFaultTest.class.getClassLoader();
        AllocationFaultLoader loader = new AllocationFaultLoader(parent,
                List.of("io.samepage.image.", "io.samepage.core.", "org.agrona.collections."),
                engineToo ? AllocationFaultLoader.fromCodeSourcesOf(parent, ImageIndex.class, DedupEngine.class, Int2IntHashMap.class)
                        : AllocationFaultLoader.fromCodeSourcesOf(parent, ImageIndex.class),
                Set.of("java/lang/Throwable.addSuppressed"));
        Class<?> loaded = loader.loadClass(type.getName());
        Path own = Files.createDirectory(dir.resolve(type.getSimpleName() + (shape == null ? "" : "-" + shape)));
        Constructor<?> constructor = shape == null ? loaded.getDeclaredConstructor(Path.class)
                : loaded.getDeclaredConstructor(String.class, Path.class);
        constructor.setAccessible(true);
        Object scenario = shape == null ? constructor.newInstance(own) : constructor.newInstance(shape, own);
        String name = type.getSimpleName() + (shape == null ? "" : " " + shape);
        @SuppressWarnings("unchecked")
        LongFunction<String> run = (LongFunction<String>) scenario;
        assertEquals("", run.apply(0), name + ": the run that fails nothing, loading the classes");
        AllocationFaults.record();
        assertEquals("", run.apply(0), name + ": the run that fails nothing");
        List<String> recorded = AllocationFaults.recordedSites();
        long count = ((LongSupplier) scenario).getAsLong();
        assertTrue(count > 0 && count <= recorded.size(), name + ": its steps pass allocation sites of the rewritten classes");
        return new Scenario(name, run, count, recorded.subList(0, (int) count));
    }

    /**
     * Fails each chosen allocation in a run of its own; no run may find anything, and where
     * {@code deterministic}, each must fail at the site the counting run passed as its k-th.
     */
    private static void assertNoFindings(Scenario scenario, List<Long> chosen, boolean deterministic) {
        Map<String, Integer> findings = new LinkedHashMap<>();
        List<Long> notReached = new ArrayList<>();
        for (long k : chosen) {
            String found = scenario.run().apply(k);
            if (found.contains("does not return")) {
                findings.put(found, 1);
                break;      // a thread is stuck: later runs would wait for it too
            }
            if (!scenario.sites().get((int) k - 1).equals(AllocationFaults.injectedAt())) {
                notReached.add(k);
            }
            for (String line : found.lines().toList()) {
                findings.merge(line, 1, Integer::sum);
            }
        }
        System.out.println("ImageAllocationFaultTest: " + scenario.name() + ": " + chosen.size() + " of "
                + scenario.allocations() + " allocations at " + new TreeSet<>(scenario.sites()).size()
                + " sites failed one at a time; " + findings.size() + " findings");
        findings.keySet().forEach(f -> System.out.println("  " + f));
        if (deterministic) {
            assertEquals(List.of(), notReached, scenario.name() + ": runs that did not fail at the site the counting run passed there");
        }
        assertEquals(List.of(), List.copyOf(findings.keySet()), scenario.name() + ": findings");
    }
}
