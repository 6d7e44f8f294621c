package io.samepage.testing;

import java.lang.reflect.Constructor;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.SplittableRandom;
import java.util.TreeSet;
import java.util.function.LongFunction;
import java.util.function.LongSupplier;

/**
 * Drives an allocation fault scenario the way every allocation fault test does: loads it through an
 * {@link AllocationFaultLoader}, counts the allocations a run passes, chooses which of them to fail, and
 * fails each chosen one in a run of its own, collecting what the runs find. The test keeps what is its
 * own: the loader (which packages it rewrites), the scenario and its arguments, how many allocations to
 * sample, and the assertions on the {@link Outcome}.
 *
 * <p>A scenario is a class that implements {@link LongFunction}{@code <String>} and {@link LongSupplier}:
 * {@code apply(k)} runs its steps once with the {@code k}-th allocation failing (0: none) and returns
 * what it found wrong, one finding a line, or {@code ""}; {@code getAsLong()} is how many allocations the
 * last run passed in the steps it means to fail (the ones around them, such as its own set-up, are not).
 *
 * <p>Lines are printed to {@code System.out} starting with the name given to the constructor, so that a
 * test's output says which test drove which scenario. Not thread safe: like {@link AllocationFaults},
 * one test at a time.
 */
public final class AllocationFaultRuns {

    /**
     * The words with which a scenario reports a thread that is stuck: a run that finds it ends the runs,
     * since each later run would wait for that thread too.
     */
    public static final String STUCK = "does not return";

    private final String printedAs;

    /** @param printedAs what the lines this prints start with, the test's name */
    public AllocationFaultRuns(String printedAs) {
        this.printedAs = printedAs;
    }

    /**
     * A scenario loaded through a loader of its own, counted by a run that fails nothing after one that
     * loads its classes.
     *
     * @param name        what lines and messages about it say
     * @param instance    the scenario, made by the loader's class
     * @param run         its steps, failing the k-th allocation
     * @param allocations how many allocations its steps pass, at least 1
     * @param sites       the site of each of them, the k-th at index k - 1
     */
    public record Scenario(String name, Object instance, LongFunction<String> run, long allocations, List<String> sites) {
    }

    /**
     * What the runs of {@link #failEach} found.
     *
     * @param findings   each line a run returned, once, in the order first found
     * @param notReached the k whose run did not fail at the site the counting run passed as its k-th
     */
    public record Outcome(List<String> findings, List<Long> notReached) {
    }

    /**
     * Loads {@code type} through {@code loader}, makes it with its one constructor that takes
     * {@code arguments}, runs it once to load its classes and once, recording, to count its allocations.
     *
     * @throws AssertionError if either run that fails nothing finds something, or the count is not
     *                        between 1 and the allocations recorded
     * @throws IllegalArgumentException if {@code type} has no one constructor for {@code arguments}
     */
    public static Scenario load(AllocationFaultLoader loader, Class<?> type, String name, Object... arguments)
            throws ReflectiveOperationException {
        Constructor<?> constructor = constructorFor(loader.loadClass(type.getName()), arguments);
        constructor.setAccessible(true);
        Object scenario = constructor.newInstance(arguments);
        @SuppressWarnings("unchecked")
        LongFunction<String> run = (LongFunction<String>) scenario;
        expectNothing(run.apply(0), name + ": the run that fails nothing, loading the classes");
        AllocationFaults.record();
        expectNothing(run.apply(0), name + ": the run that fails nothing");
        List<String> recorded = AllocationFaults.recordedSites();
        long count = ((LongSupplier) scenario).getAsLong();
        if (count <= 0 || count > recorded.size()) {
            throw new AssertionError(name + ": its steps pass allocation sites of the rewritten classes ("
                    + count + " counted, " + recorded.size() + " recorded)");
        }
        return new Scenario(name, scenario, run, count, recorded.subList(0, (int) count));
    }

    private static void expectNothing(String found, String what) {
        if (!found.isEmpty()) {
            throw new AssertionError(what + ": found " + found);
        }
    }

    private static Constructor<?> constructorFor(Class<?> type, Object[] arguments) {
        List<Constructor<?>> fitting = new ArrayList<>();
        for (Constructor<?> constructor : type.getDeclaredConstructors()) {
            Class<?>[] parameters = constructor.getParameterTypes();
            boolean fits = parameters.length == arguments.length;
            for (int i = 0; fits && i < parameters.length; i++) {
                fits = parameters[i].isInstance(arguments[i]);
            }
            if (fits) {
                fitting.add(constructor);
            }
        }
        if (fitting.size() != 1) {
            throw new IllegalArgumentException(type.getName() + ": " + fitting.size() + " constructors take "
                    + Arrays.toString(arguments) + ", not one");
        }
        return fitting.getFirst();
    }

    /** Every allocation the scenario passes, 1 to its count. */
    public static List<Long> every(Scenario scenario) {
        List<Long> every = new ArrayList<>();
        for (long k = 1; k <= scenario.allocations(); k++) {
            every.add(k);
        }
        return every;
    }

    /** The first allocation the counting run passed at each site, in order. */
    public static List<Long> firstAtEachSite(Scenario scenario) {
        List<Long> chosen = new ArrayList<>();
        Set<String> seen = new LinkedHashSet<>();
        for (int i = 0; i < scenario.sites().size(); i++) {
            if (seen.add(scenario.sites().get(i))) {
                chosen.add(i + 1L);
            }
        }
        return chosen;
    }

    /**
     * The last allocation the counting run passed at each site, in order: where a site is passed more than
     * once (a list that each of several agents joins), the first alone misses what only a later pass leaves
     * behind (a thread started before its runner was listed, found only by a seeded sample at first).
     */
    public static List<Long> lastAtEachSite(Scenario scenario) {
        Set<Long> chosen = new TreeSet<>();
        Set<String> seen = new java.util.HashSet<>();
        for (int i = scenario.sites().size() - 1; i >= 0; i--) {
            if (seen.add(scenario.sites().get(i))) {
                chosen.add(i + 1L);
            }
        }
        return new ArrayList<>(chosen);
    }

    /**
     * {@code size} allocations drawn from 1 to the count with {@code seed}, in order, each once (so
     * fewer than {@code size} where draws repeat): one seed always draws the same ones.
     */
    public static List<Long> sample(Scenario scenario, int size, long seed) {
        SplittableRandom random = new SplittableRandom(seed);
        Set<Long> chosen = new TreeSet<>();
        for (int i = 0; i < size; i++) {
            chosen.add(random.nextLong(1, scenario.allocations() + 1));
        }
        return new ArrayList<>(chosen);
    }

    /**
     * {@link #firstAtEachSite}, {@link #lastAtEachSite} and a {@link #sample} of {@code size} more, in
     * order, each once; the seed is {@link #seed} of the scenario's name.
     */
    public List<Long> eachSiteAndASample(Scenario scenario, int size) {
        return eachSiteAndASample(scenario, size, seed(scenario.name()));
    }

    /**
     * {@link #firstAtEachSite}, {@link #lastAtEachSite} and a {@link #sample} of {@code size} more with
     * {@code seed}, in order, each once.
     */
    public static List<Long> eachSiteAndASample(Scenario scenario, int size, long seed) {
        Set<Long> chosen = new TreeSet<>(firstAtEachSite(scenario));
        chosen.addAll(lastAtEachSite(scenario));
        chosen.addAll(sample(scenario, size, seed));
        return new ArrayList<>(chosen);
    }

    /**
     * {@code -Dallocfault.seed}, else a new seed; printed as {@code "<test>: <what>, -Dallocfault.seed=<seed>"},
     * so that a run can be repeated.
     */
    public long seed(String what) {
        long seed = Long.getLong("allocfault.seed", System.nanoTime());
        System.out.println(printedAs + ": " + what + ", -Dallocfault.seed=" + seed);
        return seed;
    }

    /**
     * Fails each chosen allocation in a run of its own, and notes each run that did not fail at the site
     * the counting run passed there. A run that finds a thread {@link #STUCK} ends the runs, and its
     * finding is kept whole. Prints how many runs failed how many sites, and each finding.
     */
    public Outcome failEach(Scenario scenario, List<Long> chosen) {
        Map<String, Integer> findings = new LinkedHashMap<>();
        List<Long> notReached = new ArrayList<>();
        for (long k : chosen) {
            String found = scenario.run().apply(k);
            if (found.contains(STUCK)) {
                findings.put(found, 1);
                break;
            }
            if (!scenario.sites().get((int) k - 1).equals(AllocationFaults.injectedAt())) {
                notReached.add(k);
            }
            for (String line : found.lines().toList()) {
                findings.merge(line, 1, Integer::sum);
            }
        }
        System.out.println(printedAs + ": " + scenario.name() + ": " + chosen.size() + " of " + scenario.allocations()
                + " allocations at " + new TreeSet<>(scenario.sites()).size() + " sites failed one at a time; "
                + findings.size() + " findings");
        findings.keySet().forEach(f -> System.out.println("  " + f));
        return new Outcome(List.copyOf(findings.keySet()), List.copyOf(notReached));
    }
}
