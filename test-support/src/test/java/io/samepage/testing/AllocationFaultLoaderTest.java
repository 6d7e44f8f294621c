package io.samepage.testing;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotSame;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.samepage.testing.sample.Allocating;
import io.samepage.testing.sample.Suppressing;
import java.util.HashMap;
import java.util.List;
import java.util.Set;
import java.util.function.BinaryOperator;
import java.util.function.Function;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * The harness itself: a rewritten class counts its allocation sites, fails the one it is armed for with
 * a message naming it, and, for a collection that grows after it changed, fails after the change too;
 * armed to fail from the k-th on, it fails every one after it as well, with one error for all if asked;
 * a call named as a site counts.
 */
class AllocationFaultLoaderTest {

    @AfterEach
    void reset() {
        AllocationFaults.reset();
    }

    @SuppressWarnings("unchecked")
    private static Function<HashMap<String, Integer>, int[]> load(boolean rewrite) throws ReflectiveOperationException {
        AllocationFaultLoader loader = new AllocationFaultLoader(AllocationFaultLoaderTest.class.getClassLoader(),
                List.of("io.samepage.testing.sample."), name -> rewrite);
        return (Function<HashMap<String, Integer>, int[]>) loader.loadClass(Allocating.class.getName())
                .getConstructor().newInstance();
    }

    @Test
    void theKthAllocationThrowsNamingItsSiteAndTheOthersRun() throws Exception {
        Function<HashMap<String, Integer>, int[]> code = load(true);
        AllocationFaults.record();
        code.apply(new HashMap<>());
        List<String> sites = AllocationFaults.recordedSites();
        assertEquals(4, sites.size(), "new int[], Integer.valueOf, HashMap.put and after it: " + sites);
        assertTrue(sites.get(0).startsWith("Allocating.apply:"), sites.toString());
        assertTrue(sites.get(3).endsWith(", after put"), sites.toString());

        for (int k = 1; k <= 4; k++) {
            HashMap<String, Integer> map = new HashMap<>();
            AllocationFaults.failAt(k);
            OutOfMemoryError e = assertThrows(OutOfMemoryError.class, () -> code.apply(map), "allocation " + k);
            assertEquals(AllocationFaults.MESSAGE_PREFIX + sites.get(k - 1), e.getMessage());
            assertEquals(sites.get(k - 1), AllocationFaults.injectedAt());
            assertEquals(k == 4, map.containsKey("made"), "only the site after the put fails once the map changed");
        }
        AllocationFaults.failAt(5);
        assertEquals(2, code.apply(new HashMap<>()).length, "a failure past the last allocation is not reached");
        assertEquals(null, AllocationFaults.injectedAt());
    }

    @Test
    void failFromFailsEveryAllocationFromTheKthOnUntilDisarmed() throws Exception {
        Function<HashMap<String, Integer>, int[]> code = load(true);
        AllocationFaults.record();
        code.apply(new HashMap<>());
        List<String> sites = AllocationFaults.recordedSites();
        AllocationFaults.failFrom(2);
        OutOfMemoryError second = assertThrows(OutOfMemoryError.class, () -> code.apply(new HashMap<>()));
        assertEquals(AllocationFaults.MESSAGE_PREFIX + sites.get(1), second.getMessage());
        OutOfMemoryError after = assertThrows(OutOfMemoryError.class, () -> code.apply(new HashMap<>()),
                "the next run's first allocation fails too");
        assertEquals(AllocationFaults.MESSAGE_PREFIX + sites.get(0), after.getMessage());
        assertEquals(sites.get(1), AllocationFaults.injectedAt(), "the first to fail is the one named");
        AllocationFaults.disarm();
        assertEquals(2, code.apply(new HashMap<>()).length);
    }

    @Test
    void failFromWithOneErrorThrowsThatOneErrorAtEveryFailure() throws Exception {
        Function<HashMap<String, Integer>, int[]> code = load(true);
        AllocationFaults.record();
        code.apply(new HashMap<>());
        List<String> sites = AllocationFaults.recordedSites();
        OutOfMemoryError one = AllocationFaults.failFromWithOneError(2);
        assertTrue(one.getMessage().startsWith(AllocationFaults.MESSAGE_PREFIX), one.getMessage());
        assertSame(one, assertThrows(OutOfMemoryError.class, () -> code.apply(new HashMap<>())));
        assertSame(one, assertThrows(OutOfMemoryError.class, () -> code.apply(new HashMap<>())),
                "the next run's first allocation throws the same error");
        assertEquals(sites.get(1), AllocationFaults.injectedAt(), "the first to fail is the one named");
        AllocationFaults.failFrom(2);
        assertNotSame(one, assertThrows(OutOfMemoryError.class, () -> code.apply(new HashMap<>())),
                "armed again with failFrom, a new error each");
    }

    @Test
    void aCallNamedAsAnotherSiteIsCountedOnlyWhereNamed() throws Exception {
        BinaryOperator<Throwable> named = suppressing(Set.of("java/lang/Throwable.addSuppressed"));
        AllocationFaults.record();
        named.apply(new IllegalStateException(), new IllegalArgumentException());
        List<String> sites = AllocationFaults.recordedSites();
        assertEquals(1, sites.size(), sites.toString());
        assertTrue(sites.get(0).startsWith("Suppressing.apply:"), sites.toString());
        AllocationFaults.failAt(1);
        IllegalStateException thrown = new IllegalStateException();
        assertThrows(OutOfMemoryError.class, () -> named.apply(thrown, new IllegalArgumentException()));
        assertEquals(0, thrown.getSuppressed().length, "counted before the call");

        BinaryOperator<Throwable> unnamed = suppressing(Set.of());
        AllocationFaults.failAt(1);
        unnamed.apply(new IllegalStateException(), new IllegalArgumentException());
        assertEquals(0, AllocationFaults.count(), "not a site unless named");
    }

    @SuppressWarnings("unchecked")
    private static BinaryOperator<Throwable> suppressing(Set<String> moreCalls) throws ReflectiveOperationException {
        AllocationFaultLoader loader = new AllocationFaultLoader(AllocationFaultLoaderTest.class.getClassLoader(),
                List.of("io.samepage.testing.sample."), name -> true, moreCalls);
        return (BinaryOperator<Throwable>) loader.loadClass(Suppressing.class.getName()).getConstructor().newInstance();
    }

    @Test
    void classesNotNamedAreLoadedHereAsTheyAre() throws Exception {
        Function<HashMap<String, Integer>, int[]> code = load(false);
        AllocationFaults.failAt(1);
        code.apply(new HashMap<>());
        assertEquals(0, AllocationFaults.count());
        assertTrue(code.getClass().getClassLoader() instanceof AllocationFaultLoader, "loaded child first");
    }

    @Test
    void theCounterCannotBeLoadedTwice() {
        assertThrows(IllegalArgumentException.class, () -> new AllocationFaultLoader(getClass().getClassLoader(),
                List.of("io.samepage.testing."), name -> true));
    }
}
