package io.samepage.testing;

import static org.junit.jupiter.api.Assertions.assertEquals;

import io.samepage.testing.AllocationFaultRuns.Outcome;
import io.samepage.testing.AllocationFaultRuns.Scenario;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.io.TempDir;

/**
 * What the allocation fault tests of the daemon, host mode and the image index share, so that each states
 * only which classes it rewrites, which scenarios it runs and which allocations it fails: a temporary
 * directory ({@link #dir}), the driver ({@link #runs}, whose lines start with the test class's simple
 * name), a scenario loaded through a loader of its own ({@link #loadRewritten}), the assertions on what
 * the runs found ({@link #assertNoFindings}), and {@link AllocationFaults} reset after each test.
 *
 * <p>Each scenario's loader also counts each call of {@code Throwable.addSuppressed} as an allocation
 * (it allocates, as a failed step's clean-up does). Not thread safe: like {@link AllocationFaults}, one
 * test at a time.
 */
public abstract class AllocationFaultTestBase {

    private static final Set<String> MORE_CALLS = Set.of("java/lang/Throwable.addSuppressed");

    /** The test's own temporary directory. */
    @TempDir
    protected Path dir;

    /** The driver of the test's runs; what it prints starts with the test class's simple name. */
    protected final AllocationFaultRuns runs = new AllocationFaultRuns(getClass().getSimpleName());

    /** For a subclass: a JUnit test class. */
    protected AllocationFaultTestBase() {
    }

    /** No allocation fails after a test, whatever it left armed. */
    @AfterEach
    protected final void resetAllocationFaults() {
        AllocationFaults.reset();
    }

    /**
     * Loads {@code type} through a loader of its own that defines the classes of {@code childFirst}'s
     * packages ({@code "io.samepage.daemon."}) itself and rewrites those found where one of
     * {@code rewrittenWith} came from (its module's main classes); makes it with {@code arguments} and
     * counts it ({@link AllocationFaultRuns#load}), under {@code name}.
     */
    protected final Scenario loadRewritten(List<String> childFirst, List<Class<?>> rewrittenWith, Class<?> type,
            String name, Object... arguments) throws ReflectiveOperationException {
        ClassLoader parent = getClass().getClassLoader();
        AllocationFaultLoader loader = new AllocationFaultLoader(parent, childFirst,
                AllocationFaultLoader.fromCodeSourcesOf(parent, rewrittenWith.toArray(Class<?>[]::new)), MORE_CALLS);
        return AllocationFaultRuns.load(loader, type, name, arguments);
    }

    /**
     * As {@link #loadRewritten}, {@code type} made with {@code shape} (or without, if null) and a directory
     * of its own under {@link #dir}, named for the type and shape; the scenario is named
     * {@code "<type's simple name> <shape>"}, or the type's simple name alone.
     */
    protected final Scenario loadRewrittenInOwnDirectory(List<String> childFirst, List<Class<?>> rewrittenWith,
            Class<?> type, String shape) throws Exception {
        Path own = Files.createDirectory(dir.resolve(type.getSimpleName() + (shape == null ? "" : "-" + shape)));
        return shape == null ? loadRewritten(childFirst, rewrittenWith, type, type.getSimpleName(), own)
                : loadRewritten(childFirst, rewrittenWith, type, type.getSimpleName() + " " + shape, shape, own);
    }

    /**
     * Fails each chosen allocation in a run of its own; no run may find anything ({@link #assertNothingFound}),
     * and each must fail at the site the counting run passed as its k-th ({@link #assertEachFailedAtItsSite}).
     */
    protected final void assertNoFindings(Scenario scenario, List<Long> chosen) {
        Outcome outcome = runs.failEach(scenario, chosen);
        assertNothingFound(scenario, outcome);
        assertEachFailedAtItsSite(scenario, outcome);
    }

    /**
     * {@link #assertNoFindings}, then closes the scenario, which holds something a test must end (a process,
     * a daemon: it is {@link AutoCloseable}), whatever the runs found.
     */
    protected final void assertNoFindingsThenClose(Scenario scenario, List<Long> chosen) throws Exception {
        try {
            assertNoFindings(scenario, chosen);
        } finally {
            ((AutoCloseable) scenario.instance()).close();
        }
    }

    /** No run of {@code outcome} found anything. */
    protected static void assertNothingFound(Scenario scenario, Outcome outcome) {
        assertEquals(List.of(), outcome.findings(), scenario.name() + ": findings");
    }

    /** Each run of {@code outcome} failed at the site the counting run passed as its k-th. */
    protected static void assertEachFailedAtItsSite(Scenario scenario, Outcome outcome) {
        assertEquals(List.of(), outcome.notReached(),
                scenario.name() + ": runs that did not fail at the site the counting run passed there");
    }
}
