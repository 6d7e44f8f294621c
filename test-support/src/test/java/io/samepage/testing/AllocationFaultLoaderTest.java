package io.samepage.testing;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.samepage.testing.sample.Allocating;
import java.util.HashMap;
import java.util.List;
import java.util.function.Function;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * The harness itself: a rewritten class counts its allocation sites, fails the one it is armed for with
 * a message naming it, and, for a collection that grows after it changed, fails after the change too.
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
